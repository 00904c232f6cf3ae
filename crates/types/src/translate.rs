//! `translate_wan_addrs`: answers about another datacenter's nodes and services carry their
//! WAN addresses (tagged `wan`, `wan_ipv4`, `wan_ipv6`), so a caller outside that datacenter's
//! network can reach them. Consul's `TranslateAddresses`: only for rows of a datacenter other
//! than the agent's, and only when the agent turned it on; an address without a WAN tag is
//! left as it is.
//!
//! The choice follows Consul's: an IPv6 address when one is tagged, else an IPv4 one, else the
//! default (`wan`, else the registered address), so a node tagged as agents tag themselves
//! (`lan`, `lan_ipv4`, `wan`, `wan_ipv4`) is answered with its `wan_ipv4`.

use crate::catalog::{
    CheckServiceNode, Node, NodeService, NodeServiceList, NodeServices, ServiceAddresses,
    ServiceNode, StrMap,
};

fn pick(def: String, v4: String, v6: String) -> String {
    if !v6.is_empty() {
        v6
    } else if !v4.is_empty() {
        v4
    } else {
        def
    }
}

/// A node's address as seen from another datacenter.
pub fn node_address(addr: &str, tagged: &StrMap) -> String {
    let tag = |k: &str| tagged.get(k).cloned();
    let lan = |k: &str| tag(k).unwrap_or_default();
    pick(
        tag("wan").unwrap_or_else(|| addr.to_string()),
        tag("wan_ipv4").unwrap_or_else(|| lan("lan_ipv4")),
        tag("wan_ipv6").unwrap_or_else(|| lan("lan_ipv6")),
    )
}

/// A service's address as seen from another datacenter.
pub fn service_address(addr: &str, tagged: &ServiceAddresses) -> String {
    let tag = |k: &str| tagged.get(k).map(|a| a.address.clone());
    let lan = |k: &str| tag(k).unwrap_or_default();
    pick(
        tag("wan").unwrap_or_else(|| addr.to_string()),
        tag("wan_ipv4").unwrap_or_else(|| lan("lan_ipv4")),
        tag("wan_ipv6").unwrap_or_else(|| lan("lan_ipv6")),
    )
}

/// A service's port as seen from another datacenter: the `wan` tagged port when it has one.
pub fn service_port(port: u16, tagged: &ServiceAddresses) -> u16 {
    tagged
        .get("wan")
        .map(|a| a.port)
        .filter(|p| *p != 0)
        .unwrap_or(port)
}

/// A row that holds addresses to translate.
pub trait WanAddresses {
    /// Replace the row's addresses by the WAN ones (see the module docs).
    fn use_wan_addresses(&mut self);
}

impl WanAddresses for Node {
    fn use_wan_addresses(&mut self) {
        self.address = node_address(&self.address, &self.tagged_addresses);
    }
}

impl WanAddresses for NodeService {
    fn use_wan_addresses(&mut self) {
        self.address = service_address(&self.address, &self.tagged_addresses);
        self.port = service_port(self.port, &self.tagged_addresses);
    }
}

impl WanAddresses for ServiceNode {
    fn use_wan_addresses(&mut self) {
        self.address = node_address(&self.address, &self.tagged_addresses);
        self.service_address =
            service_address(&self.service_address, &self.service_tagged_addresses);
        self.service_port = service_port(self.service_port, &self.service_tagged_addresses);
    }
}

impl WanAddresses for CheckServiceNode {
    fn use_wan_addresses(&mut self) {
        self.node.use_wan_addresses();
        self.service.use_wan_addresses();
    }
}

impl WanAddresses for NodeServices {
    fn use_wan_addresses(&mut self) {
        self.node.use_wan_addresses();
        self.services
            .values_mut()
            .for_each(WanAddresses::use_wan_addresses);
    }
}

impl WanAddresses for NodeServiceList {
    fn use_wan_addresses(&mut self) {
        self.node.use_wan_addresses();
        self.services
            .iter_mut()
            .for_each(WanAddresses::use_wan_addresses);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ServiceAddress;

    fn tags(pairs: &[(&str, &str)]) -> StrMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn node_addresses_prefer_tagged_wan_ones() {
        // As agents tag themselves: wan_ipv4 wins.
        let agent = tags(&[
            ("lan", "10.0.0.1"),
            ("lan_ipv4", "10.0.0.1"),
            ("wan", "203.0.113.1"),
            ("wan_ipv4", "203.0.113.1"),
        ]);
        assert_eq!(node_address("10.0.0.1", &agent), "203.0.113.1");
        // Only `wan`: it replaces the address.
        assert_eq!(
            node_address("10.0.0.2", &tags(&[("wan", "198.51.100.2")])),
            "198.51.100.2"
        );
        // No WAN tag: the LAN IPv4 tag, else the address, stays.
        assert_eq!(
            node_address("10.0.0.3", &tags(&[("lan_ipv4", "10.0.0.3")])),
            "10.0.0.3"
        );
        assert_eq!(node_address("host.example", &StrMap::new()), "host.example");
        // An IPv6 WAN address is preferred (Consul's order).
        assert_eq!(
            node_address(
                "10.0.0.4",
                &tags(&[("wan", "198.51.100.4"), ("wan_ipv6", "2001:db8::4")])
            ),
            "2001:db8::4"
        );
    }

    #[test]
    fn service_address_and_port_from_the_wan_tag() {
        let mut t = ServiceAddresses::new();
        t.insert(
            "wan".into(),
            ServiceAddress {
                address: "198.51.100.9".into(),
                port: 18080,
            },
        );
        assert_eq!(service_address("10.0.0.9", &t), "198.51.100.9");
        assert_eq!(service_port(8080, &t), 18080);
        t.insert(
            "wan".into(),
            ServiceAddress {
                address: "198.51.100.9".into(),
                port: 0,
            },
        );
        assert_eq!(
            service_port(8080, &t),
            8080,
            "a WAN tag without a port keeps the port"
        );
        // An instance without an address of its own and no WAN tag stays empty (the node's
        // address is used, already translated).
        assert_eq!(service_address("", &ServiceAddresses::new()), "");
    }
}
