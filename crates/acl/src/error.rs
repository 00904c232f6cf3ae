//! Errors of rule parsing, with Consul's texts.

/// Rules that do not parse or do not validate.
///
/// The texts are Consul's (`acl/policy.go`, `acl/policy_ce.go`): decoding problems start with
/// `Failed to parse ACL rules: `, validation problems with `Invalid <resource> policy: ` followed
/// by the offending rule as Consul prints it (Go's `%#v`), e.g.
/// `Invalid key_prefix policy: &acl.KeyRule{Prefix:"foo/", Policy:"nope", EnterpriseRule:acl.EnterpriseRule{}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The text is neither valid HCL nor valid JSON, or a value has the wrong shape.
    #[error("Failed to parse ACL rules: {0}")]
    Syntax(String),
    /// A key Consul's decoder does not know (only reported by the strict [`crate::Policy::parse`];
    /// Consul itself ignores such keys, as [`crate::Policy::parse_lenient`] does).
    #[error("Failed to parse ACL rules: unknown key \"{key}\"{location}")]
    UnknownKey { key: String, location: String },
    /// A level that is not valid for the resource (`Invalid key policy: ...`,
    /// `Invalid service intentions policy: ...`, `Invalid acl policy: "list"`).
    #[error("Invalid {what} policy: {rule}")]
    InvalidPolicy {
        /// `key`, `key_prefix`, `service intentions`, `acl`, ...
        what: String,
        /// The rule as Consul prints it.
        rule: String,
    },
}

/// A templated policy that cannot be rendered (Consul's `acl_templated_policy.go` checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("acl templated policy does not exist: {0}")]
    UnknownTemplate(String),
    #[error("templated policy {0} requires the variable \"name\"")]
    MissingName(String),
    #[error("service identity {0:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed")]
    InvalidServiceName(String),
    #[error("node identity {0:?}  has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed")]
    InvalidNodeName(String),
    /// The rendered rules do not parse (a name an HCL string cannot hold).
    #[error(transparent)]
    Rules(#[from] RulesError),
}

/// A `(resource, access)` pair that Consul's `acl.Enforce` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnforceError {
    #[error("Invalid ACL resource requested: {0:?}")]
    UnknownResource(String),
    #[error("Invalid access level for {resource} resource: {access}")]
    UnknownAccess { resource: String, access: String },
}
