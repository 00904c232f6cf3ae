//! The command table and what every API command shares: flag parsing with Consul's error
//! behaviour and building a client from the common HTTP flags plus the environment.

pub mod acl;
pub mod agent;
pub mod catalog;
pub mod debug;
pub mod event;
pub mod exec;
pub mod force_leave;
pub mod info;
pub mod join;
pub mod keygen;
pub mod keyring;
pub mod kv;
pub mod leave;
pub mod lock;
pub mod maint;
pub mod members;
pub mod monitor;
pub mod operator;
pub mod reload;
pub mod rtt;
pub mod services;
pub mod snapshot;
pub mod tls;
pub mod validate;
pub mod version;
pub mod watch;

use proconsul_api::{Client, Config, QueryOptions};

use crate::flags::{self, Flag, ParseError, Parsed};
use crate::ui;

/// How a command runs.
#[derive(Clone, Copy)]
pub enum Run {
    /// A leaf command: parse its arguments and act.
    Exec(fn(&[String]) -> anyhow::Result<()>),
    /// A parent such as `kv`: running it alone prints its help to stderr and exits 1.
    Parent,
}

/// One entry of the command tree; nested commands are named with spaces (`kv get`).
pub struct Command {
    pub name: &'static str,
    pub synopsis: &'static str,
    pub help: fn() -> String,
    pub run: Run,
}

/// Every command, Consul's names and synopses.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "acl",
        synopsis: "Interact with Consul's ACLs",
        help: acl::help,
        run: Run::Parent,
    },
    Command {
        name: "acl auth-method",
        synopsis: "Manage Consul's ACL auth methods",
        help: acl::auth_method_help,
        run: Run::Parent,
    },
    Command {
        name: "acl auth-method create",
        synopsis: "Create an ACL auth method",
        help: acl::auth_method_create_help,
        run: Run::Exec(acl::auth_method_create),
    },
    Command {
        name: "acl auth-method delete",
        synopsis: "Delete an ACL auth method",
        help: acl::auth_method_delete_help,
        run: Run::Exec(acl::auth_method_delete),
    },
    Command {
        name: "acl auth-method list",
        synopsis: "Lists ACL auth methods",
        help: acl::auth_method_list_help,
        run: Run::Exec(acl::auth_method_list),
    },
    Command {
        name: "acl auth-method read",
        synopsis: "Read an ACL auth method",
        help: acl::auth_method_read_help,
        run: Run::Exec(acl::auth_method_read),
    },
    Command {
        name: "acl auth-method update",
        synopsis: "Update an ACL auth method",
        help: acl::auth_method_update_help,
        run: Run::Exec(acl::auth_method_update),
    },
    Command {
        name: "acl binding-rule",
        synopsis: "Manage Consul's ACL binding rules",
        help: acl::binding_rule_help,
        run: Run::Parent,
    },
    Command {
        name: "acl binding-rule create",
        synopsis: "Create an ACL binding rule",
        help: acl::binding_rule_create_help,
        run: Run::Exec(acl::binding_rule_create),
    },
    Command {
        name: "acl binding-rule delete",
        synopsis: "Delete an ACL binding rule",
        help: acl::binding_rule_delete_help,
        run: Run::Exec(acl::binding_rule_delete),
    },
    Command {
        name: "acl binding-rule list",
        synopsis: "Lists ACL binding rules",
        help: acl::binding_rule_list_help,
        run: Run::Exec(acl::binding_rule_list),
    },
    Command {
        name: "acl binding-rule read",
        synopsis: "Read an ACL binding rule",
        help: acl::binding_rule_read_help,
        run: Run::Exec(acl::binding_rule_read),
    },
    Command {
        name: "acl binding-rule update",
        synopsis: "Update an ACL binding rule",
        help: acl::binding_rule_update_help,
        run: Run::Exec(acl::binding_rule_update),
    },
    Command {
        name: "acl bootstrap",
        synopsis: "Bootstrap Consul's ACL system",
        help: acl::bootstrap_help,
        run: Run::Exec(acl::bootstrap),
    },
    Command {
        name: "acl policy",
        synopsis: "Manage Consul's ACL policies",
        help: acl::policy_help,
        run: Run::Parent,
    },
    Command {
        name: "acl policy create",
        synopsis: "Create an ACL policy",
        help: acl::policy_create_help,
        run: Run::Exec(acl::policy_create),
    },
    Command {
        name: "acl policy delete",
        synopsis: "Delete an ACL policy",
        help: acl::policy_delete_help,
        run: Run::Exec(acl::policy_delete),
    },
    Command {
        name: "acl policy list",
        synopsis: "Lists ACL policies",
        help: acl::policy_list_help,
        run: Run::Exec(acl::policy_list),
    },
    Command {
        name: "acl policy read",
        synopsis: "Read an ACL policy",
        help: acl::policy_read_help,
        run: Run::Exec(acl::policy_read),
    },
    Command {
        name: "acl policy update",
        synopsis: "Update an ACL policy",
        help: acl::policy_update_help,
        run: Run::Exec(acl::policy_update),
    },
    Command {
        name: "acl role",
        synopsis: "Manage Consul's ACL roles",
        help: acl::role_help,
        run: Run::Parent,
    },
    Command {
        name: "acl role create",
        synopsis: "Create an ACL role",
        help: acl::role_create_help,
        run: Run::Exec(acl::role_create),
    },
    Command {
        name: "acl role delete",
        synopsis: "Delete an ACL role",
        help: acl::role_delete_help,
        run: Run::Exec(acl::role_delete),
    },
    Command {
        name: "acl role list",
        synopsis: "Lists ACL roles",
        help: acl::role_list_help,
        run: Run::Exec(acl::role_list),
    },
    Command {
        name: "acl role read",
        synopsis: "Read an ACL role",
        help: acl::role_read_help,
        run: Run::Exec(acl::role_read),
    },
    Command {
        name: "acl role update",
        synopsis: "Update an ACL role",
        help: acl::role_update_help,
        run: Run::Exec(acl::role_update),
    },
    Command {
        name: "acl set-agent-token",
        synopsis: "Assign tokens for the Consul Agent's usage",
        help: acl::set_agent_token_help,
        run: Run::Exec(acl::set_agent_token),
    },
    Command {
        name: "acl templated-policy",
        synopsis: "Manage Consul's ACL templated policies",
        help: acl::templated_policy_help,
        run: Run::Parent,
    },
    Command {
        name: "acl templated-policy list",
        synopsis: "Lists ACL templated policies",
        help: acl::templated_policy_list_help,
        run: Run::Exec(acl::templated_policy_list),
    },
    Command {
        name: "acl templated-policy preview",
        synopsis: "Preview the policy rendered by the ACL templated policy",
        help: acl::templated_policy_preview_help,
        run: Run::Exec(acl::templated_policy_preview),
    },
    Command {
        name: "acl templated-policy read",
        synopsis: "Read an ACL templated policy",
        help: acl::templated_policy_read_help,
        run: Run::Exec(acl::templated_policy_read),
    },
    Command {
        name: "acl token",
        synopsis: "Manage Consul's ACL tokens",
        help: acl::token_help,
        run: Run::Parent,
    },
    Command {
        name: "acl token clone",
        synopsis: "Clone an ACL token",
        help: acl::token_clone_help,
        run: Run::Exec(acl::token_clone),
    },
    Command {
        name: "acl token create",
        synopsis: "Create an ACL token",
        help: acl::token_create_help,
        run: Run::Exec(acl::token_create),
    },
    Command {
        name: "acl token delete",
        synopsis: "Delete an ACL token",
        help: acl::token_delete_help,
        run: Run::Exec(acl::token_delete),
    },
    Command {
        name: "acl token list",
        synopsis: "List ACL tokens",
        help: acl::token_list_help,
        run: Run::Exec(acl::token_list),
    },
    Command {
        name: "acl token read",
        synopsis: "Read an ACL token",
        help: acl::token_read_help,
        run: Run::Exec(acl::token_read),
    },
    Command {
        name: "acl token update",
        synopsis: "Update an ACL token",
        help: acl::token_update_help,
        run: Run::Exec(acl::token_update),
    },
    Command {
        name: "agent",
        synopsis: "Runs a Consul agent",
        help: agent::help,
        run: Run::Exec(agent::run),
    },
    Command {
        name: "catalog",
        synopsis: "Interact with the catalog",
        help: catalog::help,
        run: Run::Parent,
    },
    Command {
        name: "catalog datacenters",
        synopsis: "Lists all known datacenters",
        help: catalog::datacenters_help,
        run: Run::Exec(catalog::datacenters),
    },
    Command {
        name: "catalog nodes",
        synopsis: "Lists all nodes in the given datacenter",
        help: catalog::nodes_help,
        run: Run::Exec(catalog::nodes),
    },
    Command {
        name: "catalog services",
        synopsis: "Lists all registered services in a datacenter",
        help: catalog::services_help,
        run: Run::Exec(catalog::services),
    },
    Command {
        name: "debug",
        synopsis: "Records a debugging archive for operators",
        help: debug::help,
        run: Run::Exec(debug::run),
    },
    Command {
        name: "event",
        synopsis: "Fire a new event",
        help: event::help,
        run: Run::Exec(event::run),
    },
    Command {
        name: "exec",
        synopsis: "Executes a command on Consul nodes",
        help: exec::help,
        run: Run::Exec(exec::run),
    },
    Command {
        name: "force-leave",
        synopsis: "Forces a member of the cluster to enter the \"left\" state",
        help: force_leave::help,
        run: Run::Exec(force_leave::run),
    },
    Command {
        name: "info",
        synopsis: "Provides debugging information for operators.",
        help: info::help,
        run: Run::Exec(info::run),
    },
    Command {
        name: "join",
        synopsis: "Tell Consul agent to join cluster",
        help: join::help,
        run: Run::Exec(join::run),
    },
    Command {
        name: "keygen",
        synopsis: "Generates a new encryption key",
        help: keygen::help,
        run: Run::Exec(keygen::run),
    },
    Command {
        name: "keyring",
        synopsis: "Manages gossip layer encryption keys",
        help: keyring::help,
        run: Run::Exec(keyring::run),
    },
    Command {
        name: "kv",
        synopsis: "Interact with the key-value store",
        help: kv::help,
        run: Run::Parent,
    },
    Command {
        name: "kv delete",
        synopsis: "Removes data from the KV store",
        help: kv::delete_help,
        run: Run::Exec(kv::delete),
    },
    Command {
        name: "kv export",
        synopsis: "Exports a tree from the KV store as JSON",
        help: kv::export_help,
        run: Run::Exec(kv::export),
    },
    Command {
        name: "kv get",
        synopsis: "Retrieves or lists data from the KV store",
        help: kv::get_help,
        run: Run::Exec(kv::get),
    },
    Command {
        name: "kv import",
        synopsis: "Imports a tree stored as JSON to the KV store",
        help: kv::import_help,
        run: Run::Exec(kv::import),
    },
    Command {
        name: "kv put",
        synopsis: "Sets or updates data in the KV store",
        help: kv::put_help,
        run: Run::Exec(kv::put),
    },
    Command {
        name: "leave",
        synopsis: "Gracefully leaves the Consul cluster and shuts down",
        help: leave::help,
        run: Run::Exec(leave::run),
    },
    Command {
        name: "lock",
        synopsis: "Execute a command holding a lock",
        help: lock::help,
        run: Run::Exec(lock::run),
    },
    Command {
        name: "login",
        synopsis: "Login to Consul using an auth method",
        help: acl::login_help,
        run: Run::Exec(acl::login),
    },
    Command {
        name: "logout",
        synopsis: "Destroy a Consul token created with login",
        help: acl::logout_help,
        run: Run::Exec(acl::logout),
    },
    Command {
        name: "maint",
        synopsis: "Controls node or service maintenance mode",
        help: maint::help,
        run: Run::Exec(maint::run),
    },
    Command {
        name: "members",
        synopsis: "Lists the members of a Consul cluster",
        help: members::help,
        run: Run::Exec(members::run),
    },
    Command {
        name: "monitor",
        synopsis: "Stream logs from a Consul agent",
        help: monitor::help,
        run: Run::Exec(monitor::run),
    },
    Command {
        name: "operator",
        synopsis: "Provides cluster-level tools for Consul operators",
        help: operator::help,
        run: Run::Parent,
    },
    Command {
        name: "operator autopilot",
        synopsis: "Provides tools for modifying Autopilot configuration",
        help: operator::autopilot_help,
        run: Run::Parent,
    },
    Command {
        name: "operator autopilot get-config",
        synopsis: "Display the current Autopilot configuration",
        help: operator::get_config_help,
        run: Run::Exec(operator::get_config),
    },
    Command {
        name: "operator autopilot set-config",
        synopsis: "Modify the current Autopilot configuration",
        help: operator::set_config_help,
        run: Run::Exec(operator::set_config),
    },
    Command {
        name: "operator raft",
        synopsis: "Provides cluster-level tools for Consul operators",
        help: operator::raft_help,
        run: Run::Parent,
    },
    Command {
        name: "operator raft list-peers",
        synopsis: "Display the current Raft peer configuration",
        help: operator::list_peers_help,
        run: Run::Exec(operator::list_peers),
    },
    Command {
        name: "operator raft remove-peer",
        synopsis: "Remove a Consul server from the Raft configuration",
        help: operator::remove_peer_help,
        run: Run::Exec(operator::remove_peer),
    },
    Command {
        name: "operator raft transfer-leader",
        synopsis: "Transfer raft leadership to another node",
        help: operator::transfer_leader_help,
        run: Run::Exec(operator::transfer_leader),
    },
    Command {
        name: "operator usage",
        synopsis: "Provides cluster-level usage information",
        help: operator::usage_help,
        run: Run::Parent,
    },
    Command {
        name: "operator usage instances",
        synopsis: "Display service instance usage information",
        help: operator::usage_instances_help,
        run: Run::Exec(operator::usage_instances),
    },
    Command {
        name: "reload",
        synopsis: "Triggers the agent to reload configuration files",
        help: reload::help,
        run: Run::Exec(reload::run),
    },
    Command {
        name: "rtt",
        synopsis: "Estimates network round trip time between nodes",
        help: rtt::help,
        run: Run::Exec(rtt::run),
    },
    Command {
        name: "services",
        synopsis: "Interact with services",
        help: services::help,
        run: Run::Parent,
    },
    Command {
        name: "services deregister",
        synopsis: "Deregister services with the local agent",
        help: services::deregister_help,
        run: Run::Exec(services::deregister),
    },
    Command {
        name: "services register",
        synopsis: "Register services with the local agent",
        help: services::register_help,
        run: Run::Exec(services::register),
    },
    Command {
        name: "snapshot",
        synopsis: "Saves, restores and inspects snapshots of Consul server state",
        help: snapshot::help,
        run: Run::Parent,
    },
    Command {
        name: "snapshot inspect",
        synopsis: "Displays information about a Consul snapshot file",
        help: snapshot::inspect_help,
        run: Run::Exec(snapshot::inspect),
    },
    Command {
        name: "snapshot restore",
        synopsis: "Restores snapshot of Consul server state",
        help: snapshot::restore_help,
        run: Run::Exec(snapshot::restore),
    },
    Command {
        name: "snapshot save",
        synopsis: "Saves snapshot of Consul server state",
        help: snapshot::save_help,
        run: Run::Exec(snapshot::save),
    },
    Command {
        name: "tls",
        synopsis: "Builtin helpers for creating CAs and certificates",
        help: tls::help,
        run: Run::Parent,
    },
    Command {
        name: "tls ca",
        synopsis: "Helpers for CAs",
        help: tls::ca_help,
        run: Run::Parent,
    },
    Command {
        name: "tls ca create",
        synopsis: "Create a new consul CA",
        help: tls::ca_create_help,
        run: Run::Exec(tls::ca_create),
    },
    Command {
        name: "tls cert",
        synopsis: "Helpers for certificates",
        help: tls::cert_help,
        run: Run::Parent,
    },
    Command {
        name: "tls cert create",
        synopsis: "Create a new certificate",
        help: tls::cert_create_help,
        run: Run::Exec(tls::cert_create),
    },
    Command {
        name: "validate",
        synopsis: "Validate config files/directories",
        help: validate::help,
        run: Run::Exec(validate::run),
    },
    Command {
        name: "version",
        synopsis: "Prints the Consul version",
        help: version::help,
        run: Run::Exec(version::run),
    },
    Command {
        name: "watch",
        synopsis: "Watch for changes in Consul",
        help: watch::help,
        run: Run::Exec(watch::run),
    },
];

/// Look a command up by its full name.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Parse a command's flags. A bad flag prints Go's message and the command's help to stderr
/// and exits 1, as Consul's commands do.
pub fn parse_flags(spec: &[Flag], args: &[String], help: fn() -> String) -> anyhow::Result<Parsed> {
    match flags::parse(spec, args) {
        Ok(p) => Ok(p),
        Err(ParseError::Help) => Err(ui::fail(help())),
        Err(ParseError::Invalid(msg)) => Err(ui::fail(format!("{msg}\n{}", help()))),
    }
}

/// The client settings of the common HTTP flags (`-http-addr`, `-token`, `-token-file`,
/// `-datacenter`, `-ca-file`, `-ca-path`, `-client-cert`, `-client-key`, `-tls-server-name`)
/// over `CONSUL_HTTP_*`/`CONSUL_CACERT`/... and then the defaults: a flag wins over its
/// variable, as in Consul's `HTTPFlags.MergeOntoConfig`.
pub fn api_config(p: &Parsed) -> Config {
    api_config_over(p, Config::from_env())
}

fn api_config_over(p: &Parsed, mut cfg: Config) -> Config {
    let path = |name| p.str(name).map(std::path::PathBuf::from);
    if let Some(a) = p.str("http-addr") {
        cfg.address = a.to_string();
    }
    if let Some(t) = p.str("token") {
        cfg.token = Some(t.to_string());
    }
    if let Some(f) = path("token-file") {
        cfg.token_file = Some(f);
    }
    if let Some(dc) = p.str("datacenter") {
        cfg.datacenter = Some(dc.to_string());
    }
    if let Some(f) = path("ca-file") {
        cfg.tls.ca_file = Some(f);
    }
    if let Some(f) = path("ca-path") {
        cfg.tls.ca_path = Some(f);
    }
    if let Some(f) = path("client-cert") {
        cfg.tls.cert_file = Some(f);
    }
    if let Some(f) = path("client-key") {
        cfg.tls.key_file = Some(f);
    }
    if let Some(n) = p.str("tls-server-name") {
        cfg.tls.server_name = Some(n.to_string());
    }
    cfg
}

/// Build a client from `cfg`; a bad address or TLS file is Consul's `Error connecting to
/// Consul agent: ...` and exit 1.
pub fn client_from(cfg: Config) -> anyhow::Result<Client> {
    Client::new(cfg).map_err(|e| ui::fail(format!("Error connecting to Consul agent: {e}")))
}

/// A client for the agent named by the common HTTP flags ([`api_config`]).
pub fn client(p: &Parsed) -> anyhow::Result<Client> {
    client_from(api_config(p))
}

/// Read options from `-stale`.
pub fn query_options(p: &Parsed) -> QueryOptions {
    QueryOptions::stale(p.bool("stale"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{CLIENT_FLAGS, SERVER_FLAGS};

    fn parsed(args: &[&str]) -> Parsed {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        flags::parse(&flags::with(&[], &[CLIENT_FLAGS, SERVER_FLAGS]), &args).unwrap()
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Config {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn tls_flags_win_over_their_variables() {
        let e = env(&[
            ("CONSUL_HTTP_ADDR", "127.0.0.1:8501"),
            ("CONSUL_HTTP_SSL", "true"),
            ("CONSUL_CACERT", "/env/ca.pem"),
            ("CONSUL_CLIENT_CERT", "/env/cli.pem"),
            ("CONSUL_CLIENT_KEY", "/env/cli-key.pem"),
            ("CONSUL_TLS_SERVER_NAME", "env.example"),
        ]);
        let c = api_config_over(
            &parsed(&[
                "-ca-file=/flag/ca.pem",
                "-ca-path",
                "/flag/cas",
                "-client-key=/flag/key.pem",
                "-tls-server-name=server.dc1.consul",
            ]),
            e,
        );
        assert_eq!(c.base_url().unwrap(), "https://127.0.0.1:8501");
        assert_eq!(c.tls.ca_file.as_deref(), Some("/flag/ca.pem".as_ref()));
        assert_eq!(c.tls.ca_path.as_deref(), Some("/flag/cas".as_ref()));
        // Not given as a flag: the variable's.
        assert_eq!(c.tls.cert_file.as_deref(), Some("/env/cli.pem".as_ref()));
        assert_eq!(c.tls.key_file.as_deref(), Some("/flag/key.pem".as_ref()));
        assert_eq!(c.tls.server_name.as_deref(), Some("server.dc1.consul"));
    }

    #[test]
    fn an_https_http_addr_needs_no_variable() {
        let c = api_config_over(&parsed(&["-http-addr=https://localhost:8501"]), env(&[]));
        assert_eq!(c.base_url().unwrap(), "https://localhost:8501");
        assert!(!c.tls.insecure_skip_verify);
        let c = api_config_over(
            &parsed(&["-http-addr=localhost:8501"]),
            env(&[
                ("CONSUL_HTTP_SSL", "1"),
                ("CONSUL_HTTP_SSL_VERIFY", "false"),
            ]),
        );
        assert_eq!(c.base_url().unwrap(), "https://localhost:8501");
        assert!(c.tls.insecure_skip_verify);
    }

    #[test]
    fn a_bad_ca_file_is_an_error_connecting() {
        let p = parsed(&[
            "-http-addr=https://127.0.0.1:8501",
            "-ca-file=/nonexistent/ca.pem",
        ]);
        let e = client_from(api_config_over(&p, env(&[]))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error connecting to Consul agent: Error loading CA File: open /nonexistent/ca.pem: \
             no such file or directory"
        );
    }
}
