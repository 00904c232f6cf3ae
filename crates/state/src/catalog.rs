//! Catalog: nodes, services and health checks (Consul `state/catalog.go`).
//!
//! Writes follow Consul's `ensureRegistrationTxn`: the node is upserted only if the request
//! changes it, the service only if it differs, and every check is validated against its node and
//! service. Identical re-registrations change nothing (no index bump, no wake-up). Index rows are
//! maintained as Consul does (`nodes`, `services`, `checks`, `service.<name>`, `node.<name>`,
//! extinction indexes) because blocking queries return them as `X-Consul-Index`.
//!
//! Names of nodes, and IDs of services and checks, are matched case-insensitively (Consul's
//! memdb indexes fold case); records keep the spelling they were registered with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proconsul_types::{
    health, CheckServiceNode, HealthCheck, Node, NodeInfo, NodeService, ServiceNode,
};

use crate::command::{Deregistration, Registration};
use crate::error::StateError;
use crate::key::{self, KeyPair, PairRef, TripleRef};
use crate::records::{fold, CheckRec, NodeRec, ServiceRec};
use crate::store::{
    multi_insert, multi_remove, node_index_key, service_index_key, State, Table, Tx,
    NODE_EXTINCTION, SERVICE_EXTINCTION,
};
use crate::view::View;
use crate::watch::WatchSet;

impl Tx {
    /// Consul `ensureRegistrationTxn`.
    pub(crate) fn ensure_registration(&mut self, reg: &Registration) -> Result<(), StateError> {
        let node = &reg.node;
        if node.name.is_empty() {
            return Err(StateError::MissingNodeName);
        }
        let changes_node = match self.s.nodes.get(&*fold(&node.name)) {
            None => true,
            Some(_) if reg.skip_node_update => false,
            Some(e) => {
                node.id != e.id
                    || fold(&node.name) != fold(&e.name)
                    || node.address != e.address
                    || node.tagged_addresses != e.tagged_addresses
                    || node.meta != e.meta
            }
        };
        if changes_node {
            self.ensure_node(node.clone())
                .map_err(|e| e.wrap("failed inserting node"))?;
        }

        if let Some(rec) = &reg.service {
            let (node_key, id) = (fold(&node.name), fold(&rec.id));
            let unchanged = self
                .s
                .services
                .get(&PairRef(&node_key, &id))
                .is_some_and(|e| e.same(rec));
            if !unchanged {
                self.ensure_service(rec.clone())
                    .map_err(|e| e.wrap("failed inserting service"))?;
            }
        }

        for check in &reg.checks {
            let mut rec = check.clone();
            if rec.node.is_empty() {
                rec.node = node.name.as_str().into();
            }
            if fold(&rec.node) != fold(&node.name) {
                return Err(StateError::Message(format!(
                    "check node {:?} does not match node {:?}",
                    rec.node, node.name
                )));
            }
            let check_node = rec.node.clone();
            self.ensure_check(rec)
                .map_err(|e| e.wrap(format!("failed inserting check on node {check_node:?}")))?;
        }
        Ok(())
    }

    /// Consul `ensureNoNodeWithSimilarNameTxn`: a healthy node with another ID owns the name.
    fn ensure_no_similar_name(
        &self,
        node: &NodeRec,
        allow_clash_without_id: bool,
    ) -> Result<(), StateError> {
        let key = fold(&node.name);
        let Some(e) = self.s.nodes.get(&*key) else {
            return Ok(());
        };
        if fold(&e.id) == fold(&node.id) {
            return Ok(());
        }
        let healthy = self
            .s
            .checks
            .get(&PairRef(&key, &fold(health::SERF_CHECK_ID)))
            .is_some_and(|c| &*c.status != health::CRITICAL);
        if !(e.id.is_empty() && allow_clash_without_id) && healthy {
            return Err(StateError::Message(format!(
                "Node name {} is reserved by node {} with name {} ({})",
                node.name, e.id, e.name, e.address
            )));
        }
        Ok(())
    }

    /// Consul `ensureNodeTxn`: upsert by ID (renaming if the ID moved) or by name.
    pub(crate) fn ensure_node(&mut self, mut node: NodeRec) -> Result<(), StateError> {
        let mut prior: Option<Arc<NodeRec>> = None;
        if !node.id.is_empty() {
            let by_id = self
                .s
                .node_ids
                .get(&fold(&node.id))
                .and_then(|k| self.s.nodes.get(k))
                .cloned();
            match by_id {
                Some(existing) => {
                    if fold(&existing.name) != fold(&node.name) {
                        self.ensure_no_similar_name(&node, false).map_err(|e| {
                            StateError::Message(format!(
                                "Error while renaming Node ID: {:?} ({}): {}",
                                node.id, node.address, e
                            ))
                        })?;
                        self.delete_node(&existing.name).map_err(|e| {
                            StateError::Message(format!(
                                "Error while renaming Node ID: {:?} ({}) from {} to {}: {}",
                                node.id, node.address, existing.name, node.name, e
                            ))
                        })?;
                    }
                    prior = Some(existing);
                }
                None => {
                    self.ensure_no_similar_name(&node, true).map_err(|e| {
                        StateError::Message(format!(
                            "Error while renaming Node ID: {:?}: {}",
                            node.id, e
                        ))
                    })?;
                }
            }
        }
        let key = self.s.node_key(&fold(&node.name));
        if prior.is_none() {
            prior = self.s.nodes.get(&key).cloned();
        }
        match &prior {
            Some(n) => {
                node.create_index = n.create_index;
                node.modify_index = n.modify_index;
                if node.same(n) {
                    return Ok(());
                }
                node.modify_index = self.idx;
            }
            None => {
                node.create_index = self.idx;
                node.modify_index = self.idx;
            }
        }
        // Keep the ID index in step with the record under this name.
        if let Some(old) = self.s.nodes.get(&key) {
            if !old.id.is_empty() && fold(&old.id) != fold(&node.id) {
                self.s.node_ids.remove(&fold(&old.id));
            }
        }
        if !node.id.is_empty() {
            self.s.node_ids.insert(fold(&node.id), key.clone());
        }
        self.s.nodes.insert(key.clone(), Arc::new(node));
        self.bump_table(Table::Nodes);
        self.bump_node(&key);
        // Node data is part of health/catalog service rows: touch every service on the node.
        self.touch_services_of_node(&key);
        Ok(())
    }

    /// Consul `updateAllServiceIndexesOfNode`.
    fn touch_services_of_node(&mut self, node_key: &str) {
        let names: BTreeSet<String> = self
            .s
            .services_of_node(node_key)
            .iter()
            .filter_map(|k| self.s.services.get(k))
            .map(|s| fold(&s.name))
            .collect();
        for n in names {
            self.bump_service(&n);
        }
    }

    /// Consul `ensureServiceTxn`.
    pub(crate) fn ensure_service(&mut self, mut svc: ServiceRec) -> Result<(), StateError> {
        let node_key = fold(&svc.node);
        if !self.s.nodes.contains_key(&*node_key) {
            return Err(StateError::MissingNode);
        }
        let key = self.s.service_key(&node_key, &fold(&svc.id));
        key::share(&mut svc.node, &key.0);
        key::share(&mut svc.id, &key.1);
        let existing = self.s.services.get(&key).cloned();
        if let Some(e) = &existing {
            svc.create_index = e.create_index;
            svc.modify_index = e.modify_index;
            if svc.same(e) {
                return Ok(());
            }
        } else {
            svc.create_index = self.idx;
        }
        svc.modify_index = self.idx;

        let name = fold(&svc.name);
        self.s.share_with_siblings(&name, &mut svc);
        if let Some(e) = &existing {
            let old = fold(&e.name);
            if old != name {
                // The instance changed its service name: it leaves the old name's group.
                multi_remove(&mut self.s.services_by_name, &old, &key);
                self.service_name_shrunk(&old);
            }
        }
        multi_insert(&mut self.s.services_by_name, name.clone(), key.clone());
        self.s.services.insert(key, Arc::new(svc));
        self.bump_table(Table::Services);
        self.bump_service(&name);
        self.bump_table(Table::Nodes);
        self.bump_node(&node_key);
        Ok(())
    }

    /// An instance of `name` went away: bump its index, or retire it if it was the last one.
    fn service_name_shrunk(&mut self, name: &str) {
        if self.s.services_by_name.contains_key(name) {
            self.bump_service(name);
        } else {
            self.s.indexes.remove(&service_index_key(name));
            self.bump(SERVICE_EXTINCTION);
            self.changes.services.insert(name.to_owned());
        }
    }

    /// Consul `ensureCheckTxn`.
    pub(crate) fn ensure_check(&mut self, mut hc: CheckRec) -> Result<(), StateError> {
        let node_key = fold(&hc.node);
        let check_id = fold(&hc.check_id);
        let existing = self.s.checks.get(&PairRef(&node_key, &check_id)).cloned();
        match &existing {
            Some(e) => {
                hc.create_index = e.create_index;
                hc.modify_index = e.modify_index;
            }
            None => hc.create_index = self.idx,
        }
        if hc.status.is_empty() {
            hc.status = health::CRITICAL.into();
        }
        if !self.s.nodes.contains_key(&*node_key) {
            return Err(StateError::MissingNode);
        }
        let modified;
        let mut service_key = None;
        if !hc.service_id.is_empty() {
            let (key, svc) = self
                .s
                .services
                .get_key_value(&PairRef(&node_key, &fold(&hc.service_id)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .ok_or(StateError::MissingService)?;
            service_key = Some(key);
            hc.service_name = svc.name.clone();
            hc.service_tags = svc.tags.clone();
            modified = !existing.as_ref().is_some_and(|e| e.same(&hc));
            if modified {
                self.bump_service(&fold(&svc.name));
            }
        } else {
            modified = !existing.as_ref().is_some_and(|e| e.same(&hc));
            if modified {
                self.touch_services_of_node(&node_key);
            }
        }

        // A critical check invalidates the sessions tied to it (even if unchanged).
        if &*hc.status == health::CRITICAL {
            let sessions: Vec<String> = self
                .s
                .session_checks
                .get(&(node_key.clone(), check_id.clone()))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for id in sessions {
                self.delete_session(&id)
                    .map_err(|e| e.wrap("failed deleting session"))?;
            }
        }
        if !modified {
            return Ok(());
        }
        hc.modify_index = self.idx;

        if let Some(e) = &existing {
            if !e.service_id.is_empty() {
                let old = TripleRef(&node_key, &fold(&e.service_id), &check_id);
                self.s.checks_by_service.remove(&old);
            }
        }
        let key = self.s.check_key(&node_key, &check_id);
        key::share(&mut hc.node, &key.0);
        key::share(&mut hc.check_id, &key.1);
        if let Some((node, service)) = service_key {
            key::share(&mut hc.service_id, &service);
            self.s
                .checks_by_service
                .insert((node, service, key.1.clone()));
        }
        self.s.checks.insert(key, Arc::new(hc));
        self.bump_table(Table::Checks);
        self.changes.node_checks.insert(node_key);
        Ok(())
    }

    /// Consul FSM `applyDeregister`: a service, else a check, else the whole node.
    pub(crate) fn deregister(&mut self, req: &Deregistration) -> Result<(), StateError> {
        if !req.service_id.is_empty() {
            self.delete_service(&req.node, &req.service_id)
        } else if !req.check_id.is_empty() {
            self.delete_check(&req.node, &req.check_id)
        } else {
            self.delete_node(&req.node)
        }
    }

    /// Consul `deleteNodeTxn`: services, checks, the node, then its sessions.
    pub(crate) fn delete_node(&mut self, name: &str) -> Result<(), StateError> {
        let key = fold(name);
        let Some(node) = self.s.nodes.get(&*key).cloned() else {
            return Ok(());
        };
        let services = self.s.services_of_node(&key);
        for sk in &services {
            if let Some(svc) = self.s.services.get(sk) {
                let n = fold(&svc.name);
                self.bump_service(&n);
            }
        }
        for (_, sid) in services {
            self.delete_service(&key, &sid)?;
        }
        for (_, cid) in self.s.checks_of_node(&key) {
            self.delete_check(&key, &cid)?;
        }
        self.delete_node_coordinates(&key);
        self.s.nodes.remove(&*key);
        if !node.id.is_empty()
            && self
                .s
                .node_ids
                .get(&fold(&node.id))
                .is_some_and(|k| **k == *key)
        {
            self.s.node_ids.remove(&fold(&node.id));
        }
        self.bump_table(Table::Nodes);
        self.s.indexes.remove(&node_index_key(&key));
        self.bump(NODE_EXTINCTION);
        self.changes.nodes.insert(key.clone());

        let sessions: Vec<String> = self
            .s
            .sessions_by_node
            .get(&key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for id in sessions {
            self.delete_session(&id).map_err(|e| {
                StateError::Message(format!("failed to delete session '{id}': {e}"))
            })?;
        }
        Ok(())
    }

    /// Consul `deleteServiceTxn`: the service's checks, then the service.
    pub(crate) fn delete_service(
        &mut self,
        node: &str,
        service_id: &str,
    ) -> Result<(), StateError> {
        let node_key = fold(node);
        let service_id = fold(service_id);
        let key = PairRef(&node_key, &service_id);
        let Some(svc) = self.s.services.get(&key).cloned() else {
            return Ok(());
        };
        for (_, cid) in self.s.checks_of_service(&node_key, &service_id) {
            self.delete_check(&node_key, &cid)?;
        }
        self.bump_table(Table::Checks);

        self.s.services.remove(&key);
        let name = fold(&svc.name);
        multi_remove(&mut self.s.services_by_name, &name, &key);
        self.bump_table(Table::Services);
        self.bump_table(Table::Nodes);
        self.bump_node(&node_key);
        self.service_name_shrunk(&name);
        Ok(())
    }

    /// Consul `deleteCheckTxn`: the check, its service's index, and sessions tied to it.
    pub(crate) fn delete_check(&mut self, node: &str, check_id: &str) -> Result<(), StateError> {
        let node_key = fold(node);
        let check_id = fold(check_id);
        let Some(hc) = self.s.checks.remove(&PairRef(&node_key, &check_id)) else {
            return Ok(());
        };
        self.bump_table(Table::Checks);
        self.changes.node_checks.insert(node_key.clone());
        if hc.service_id.is_empty() {
            self.touch_services_of_node(&node_key);
        } else {
            let service_id = fold(&hc.service_id);
            self.s
                .checks_by_service
                .remove(&TripleRef(&node_key, &service_id, &check_id));
            if let Some(svc) = self.s.services.get(&PairRef(&node_key, &service_id)) {
                let n = fold(&svc.name);
                self.bump_service(&n);
            }
        }
        let sessions: Vec<String> = self
            .s
            .session_checks
            .get(&(node_key, check_id))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for id in sessions {
            self.delete_session(&id)
                .map_err(|e| e.wrap("failed deleting session"))?;
        }
        Ok(())
    }
}

impl State {
    /// Instances of one service usually carry the same tags and meta: `svc`, an instance of
    /// `folded_name`, holds another instance's when they are equal.
    pub(crate) fn share_with_siblings(&self, folded_name: &str, svc: &mut ServiceRec) {
        if let Some(sibling) = self
            .services_by_name
            .get(folded_name)
            .and_then(|set| set.iter().next())
            .and_then(|k| self.services.get(k))
        {
            svc.tags.share(&sibling.tags);
            svc.meta.share(&sibling.meta);
        }
    }

    /// Consul `maxIndexForService`.
    fn service_index(&self, folded: &str, exists: bool, with_checks: bool) -> u64 {
        if !exists {
            if let Some(i) = self.index_of(SERVICE_EXTINCTION) {
                return i;
            }
        }
        if let Some(i) = self.index_of(&service_index_key(folded)) {
            return i;
        }
        if with_checks {
            self.max_index(&[Table::Checks, Table::Services, Table::Nodes])
        } else {
            self.max_index(&[Table::Services, Table::Nodes])
        }
    }

    /// Instances of a service name (keys and records), in (node, service ID) order.
    fn instances(&self, folded: &str) -> Vec<&ServiceRec> {
        self.services_by_name
            .get(folded)
            .map(|set| {
                set.iter()
                    .filter_map(|k| self.services.get(k))
                    .map(Arc::as_ref)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The Connect-capable instances for a service (Consul's `connect` index): proxies whose
    /// destination it is, and its own instances when Connect-native. A scan of every service:
    /// proxies are few, and this read is rare next to the plain one.
    fn connect_instances(&self, folded: &str) -> Vec<&ServiceRec> {
        let mut out: Vec<&ServiceRec> = self
            .services
            .values()
            .map(Arc::as_ref)
            .filter(|s| {
                (&*s.kind == "connect-proxy" && fold(&s.mesh().proxy.destination_name) == folded)
                    || (s.connect_native && fold(&s.name) == folded)
            })
            .collect();
        out.sort_by(|a, b| (fold(&a.node), &a.id).cmp(&(fold(&b.node), &b.id)));
        out
    }

    /// `instances`, or `connect_instances` when `connect`.
    fn instances_for(&self, folded: &str, connect: bool) -> Vec<&ServiceRec> {
        if connect {
            self.connect_instances(folded)
        } else {
            self.instances(folded)
        }
    }

    fn node_of(&self, svc: &ServiceRec) -> Option<&NodeRec> {
        self.nodes.get(&*fold(&svc.node)).map(Arc::as_ref)
    }

    /// Resolve a node by name, or by a unique ID prefix (Consul accepts either).
    fn resolve_node(&self, name_or_id: &str) -> Option<&NodeRec> {
        if let Some(n) = self.nodes.get(&*fold(name_or_id)) {
            return Some(n.as_ref());
        }
        if name_or_id.len() < 2 {
            return None;
        }
        let mut prefix = fold(name_or_id);
        if prefix.len() % 2 == 1 {
            prefix.pop();
        }
        let mut hits = self
            .node_ids
            .range(prefix.clone()..)
            .take_while(|(id, _)| id.starts_with(&prefix));
        let first = hits.next()?;
        if hits.next().is_some() {
            return None;
        }
        self.nodes.get(first.1).map(Arc::as_ref)
    }

    /// An instance with its node and checks: the node's node-level checks, then its own.
    fn check_service_node(&self, svc: &ServiceRec) -> Option<CheckServiceNode> {
        let node = self.node_of(svc)?;
        let node_key = fold(&node.name);
        let mut checks: Vec<HealthCheck> = self
            .checks_of_node(&node_key)
            .iter()
            .filter_map(|k| self.checks.get(k))
            .filter(|c| c.service_id.is_empty())
            .map(|r| r.to_api())
            .collect();
        checks.extend(
            self.checks_of_service(&node_key, &fold(&svc.id))
                .iter()
                .filter_map(|k| self.checks.get(k))
                .map(|r| r.to_api()),
        );
        Some(CheckServiceNode {
            node: node.to_api(),
            service: svc.to_api(),
            checks,
        })
    }

    /// A node with its services (by ID) and checks (by check ID): Consul's `NodeInfo`.
    fn info_of(&self, node: &NodeRec) -> NodeInfo {
        let key = fold(&node.name);
        let services = self
            .services_of_node(&key)
            .iter()
            .filter_map(|k| self.services.get(k))
            .map(|r| r.to_api())
            .collect();
        let checks = self.checks_sorted(self.checks_of_node(&key).iter());
        let n = node.to_api();
        NodeInfo {
            id: n.id,
            node: n.node,
            address: n.address,
            tagged_addresses: n.tagged_addresses,
            meta: n.meta,
            services,
            checks,
        }
    }

    /// The index of a read of whole nodes, services and checks (Consul's `NodeDump`,
    /// `ServiceDump`): the largest of the three tables'.
    fn catalog_index(&self) -> u64 {
        self.max_index(&[Table::Nodes, Table::Services, Table::Checks])
    }

    fn checks_sorted<'a>(&'a self, keys: impl Iterator<Item = &'a KeyPair>) -> Vec<HealthCheck> {
        let mut keys: Vec<&KeyPair> = keys.collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| self.checks.get(k))
            .map(|r| r.to_api())
            .collect()
    }
}

impl View {
    /// All nodes, sorted by name. Index: the nodes table.
    pub fn nodes(&self, ws: &mut WatchSet) -> (u64, Vec<Node>) {
        self.watch_table(ws, Table::Nodes);
        let s = self.state();
        (
            s.table_index(Table::Nodes),
            s.nodes.values().map(|r| r.to_api()).collect(),
        )
    }

    /// One node by name. Index: the nodes table.
    pub fn node(&self, ws: &mut WatchSet, name: &str) -> (u64, Option<Node>) {
        self.watch_node(ws, name);
        let s = self.state();
        (
            s.table_index(Table::Nodes),
            s.nodes.get(&*fold(name)).map(|r| r.to_api()),
        )
    }

    /// Service name → sorted unique tags. Index: the services table.
    pub fn services(&self, ws: &mut WatchSet) -> (u64, BTreeMap<String, Vec<String>>) {
        self.watch_table(ws, Table::Services);
        let s = self.state();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for svc in s.services.values() {
            out.entry(svc.name.to_string())
                .or_default()
                .extend(svc.tags.iter().map(str::to_owned));
        }
        let out = out
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        (s.table_index(Table::Services), out)
    }

    /// Instances of `service` carrying all `tags`, ordered by node then service ID.
    /// Index: the service's own index (Consul `maxIndexForService`).
    pub fn service_nodes(
        &self,
        ws: &mut WatchSet,
        service: &str,
        tags: &[String],
    ) -> (u64, Vec<ServiceNode>) {
        self.service_nodes_of(ws, service, tags, false)
    }

    /// The Connect-capable instances for `service` (`/v1/catalog/connect/:service`): proxies
    /// for it and its Connect-native instances. Index: the services table.
    pub fn connect_service_nodes(
        &self,
        ws: &mut WatchSet,
        service: &str,
        tags: &[String],
    ) -> (u64, Vec<ServiceNode>) {
        self.service_nodes_of(ws, service, tags, true)
    }

    fn service_nodes_of(
        &self,
        ws: &mut WatchSet,
        service: &str,
        tags: &[String],
        connect: bool,
    ) -> (u64, Vec<ServiceNode>) {
        let folded = fold(service);
        if connect {
            self.watch_table(ws, Table::Services);
        } else {
            self.watch_service(ws, &folded);
        }
        let s = self.state();
        if connect {
            let rows = s
                .connect_instances(&folded)
                .into_iter()
                .filter(|svc| svc.has_tags(tags))
                .filter_map(|svc| {
                    let node = s.node_of(svc)?;
                    Some(ServiceNode::from_parts(&node.to_api(), &svc.to_api()))
                })
                .collect();
            return (s.table_index(Table::Services), rows);
        }
        let all = s.instances_for(&folded, false);
        let exists = !all.is_empty();
        let rows = all
            .into_iter()
            .filter(|svc| svc.has_tags(tags))
            .filter_map(|svc| {
                let node = s.node_of(svc)?;
                Some(ServiceNode::from_parts(&node.to_api(), &svc.to_api()))
            })
            .collect();
        (s.service_index(&folded, exists, false), rows)
    }

    /// A node (by name or unique ID prefix) and its services, ordered by service ID.
    /// Index: the node's own index; the node extinction index when it is unknown.
    pub fn node_services(
        &self,
        ws: &mut WatchSet,
        node: &str,
    ) -> (u64, Option<(Node, Vec<NodeService>)>) {
        self.watch_node(ws, node);
        let s = self.state();
        let Some(n) = s.resolve_node(node) else {
            return (s.index_of(NODE_EXTINCTION).unwrap_or(0), None);
        };
        let key = fold(&n.name);
        if key != fold(node) {
            self.watch_node(ws, &n.name);
        }
        let services = s
            .services_of_node(&key)
            .iter()
            .filter_map(|k| s.services.get(k))
            .map(|r| r.to_api())
            .collect();
        let idx = s.index_of(&node_index_key(&key)).unwrap_or(0);
        (idx, Some((n.to_api(), services)))
    }

    /// One check of a node, looked up directly (the leader's reconcile asks for `serfHealth`
    /// of every member each second; a node may carry thousands of other checks).
    pub fn node_check(&self, node: &str, check_id: &str) -> Option<HealthCheck> {
        self.state()
            .checks
            .get(&PairRef(&fold(node), &fold(check_id)))
            .map(|r| r.to_api())
    }

    /// Checks on a node, ordered by check ID. Index: the checks table.
    pub fn node_checks(&self, ws: &mut WatchSet, node: &str) -> (u64, Vec<HealthCheck>) {
        self.watch_node_checks(ws, node);
        let s = self.state();
        let keys = s.checks_of_node(&fold(node));
        (s.table_index(Table::Checks), s.checks_sorted(keys.iter()))
    }

    /// Checks of every instance of a service name. Index: the checks table.
    pub fn service_checks(&self, ws: &mut WatchSet, service: &str) -> (u64, Vec<HealthCheck>) {
        let folded = fold(service);
        self.watch_service(ws, &folded);
        let s = self.state();
        let keys: Vec<KeyPair> = s
            .services_by_name
            .get(&folded)
            .map(|set| {
                set.iter()
                    .flat_map(|(node, id)| s.checks_of_service(node, id))
                    .collect()
            })
            .unwrap_or_default();
        (s.table_index(Table::Checks), s.checks_sorted(keys.iter()))
    }

    /// Checks in `state` (`passing`, `warning`, `critical`, or `any`). Index: the checks table.
    pub fn checks_in_state(&self, ws: &mut WatchSet, state: &str) -> (u64, Vec<HealthCheck>) {
        self.watch_table(ws, Table::Checks);
        let s = self.state();
        let rows = s
            .checks
            .values()
            .filter(|c| state == health::ANY || &*c.status == state)
            .map(|r| r.to_api())
            .collect();
        (s.table_index(Table::Checks), rows)
    }

    /// Health rows of `service` with all `tags`: each instance with its node's node-level checks
    /// followed by its own service checks. Index: the service's index, counting checks.
    pub fn check_service_nodes(
        &self,
        ws: &mut WatchSet,
        service: &str,
        tags: &[String],
    ) -> (u64, Vec<CheckServiceNode>) {
        self.check_service_nodes_of(ws, service, tags, false)
    }

    /// Health rows of the Connect-capable instances for `service`
    /// (`/v1/health/connect/:service`). Index: the services and checks tables.
    pub fn connect_check_service_nodes(
        &self,
        ws: &mut WatchSet,
        service: &str,
        tags: &[String],
    ) -> (u64, Vec<CheckServiceNode>) {
        self.check_service_nodes_of(ws, service, tags, true)
    }

    fn check_service_nodes_of(
        &self,
        ws: &mut WatchSet,
        service: &str,
        tags: &[String],
        connect: bool,
    ) -> (u64, Vec<CheckServiceNode>) {
        let folded = fold(service);
        if connect {
            self.watch_table(ws, Table::Services);
            self.watch_table(ws, Table::Checks);
        } else {
            self.watch_service(ws, &folded);
        }
        let s = self.state();
        let all = s.instances_for(&folded, connect);
        let exists = !all.is_empty();
        let rows = all
            .into_iter()
            .filter(|svc| svc.has_tags(tags))
            .filter_map(|svc| s.check_service_node(svc))
            .collect();
        if connect {
            let index = s
                .table_index(Table::Services)
                .max(s.table_index(Table::Checks));
            return (index, rows);
        }
        (s.service_index(&folded, exists, true), rows)
    }

    /// Watch the whole catalog: nodes, services and checks (the UI's dumps).
    fn watch_catalog(&self, ws: &mut WatchSet) {
        for t in [Table::Nodes, Table::Services, Table::Checks] {
            self.watch_table(ws, t);
        }
    }

    /// Every node with its services and checks, by node name (Consul's `NodeDump`).
    /// Index: the largest of the nodes, services and checks tables'.
    pub fn node_dump(&self, ws: &mut WatchSet) -> (u64, Vec<NodeInfo>) {
        self.watch_catalog(ws);
        let s = self.state();
        let dump = s.nodes.values().map(|n| s.info_of(n)).collect();
        (s.catalog_index(), dump)
    }

    /// One node (by name or unique ID prefix) with its services and checks, or nothing
    /// (Consul's `NodeInfo`). Index: as [`View::node_dump`].
    pub fn node_info(&self, ws: &mut WatchSet, node: &str) -> (u64, Vec<NodeInfo>) {
        self.watch_catalog(ws);
        let s = self.state();
        let found = s.resolve_node(node).map(|n| s.info_of(n));
        (s.catalog_index(), found.into_iter().collect())
    }

    /// Every service instance with its node and checks, in (node, service ID) order
    /// (Consul's `ServiceDump`). Index: as [`View::node_dump`].
    pub fn service_dump(&self, ws: &mut WatchSet) -> (u64, Vec<CheckServiceNode>) {
        self.watch_catalog(ws);
        let s = self.state();
        let rows = s
            .services
            .values()
            .filter_map(|svc| s.check_service_node(svc))
            .collect();
        (s.catalog_index(), rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, Proposal, Store};

    fn register(store: &Store, index: u64, node: &str, id: &str) {
        let req = serde_json::from_value(serde_json::json!({
            "Node": node, "Address": "10.0.0.1",
            "Service": {"ID": id, "Service": "web", "Tags": ["v1", "primary"],
                        "Meta": {"version": "1.2.3"}},
            "Check": {"CheckID": format!("service:{id}"), "Name": "http",
                      "Status": "passing", "ServiceID": id},
        }))
        .unwrap();
        assert!(!store
            .apply(index, &Proposal::new(0, Command::register(req)))
            .is_err());
    }

    /// Instances of one service hold one copy of their equal tags and meta, and a check holds
    /// its service's tags rather than a copy.
    #[test]
    fn records_share_their_repeated_lists() {
        let store = Store::new();
        register(&store, 1, "node-1", "web-1");
        register(&store, 2, "node-2", "web-2");
        let s = store.inner.root();
        let service = |node: &str, id: &str| s.services.get(&PairRef(node, id)).unwrap();
        let (a, b) = (service("node-1", "web-1"), service("node-2", "web-2"));
        assert!(b.tags.shares(&a.tags));
        assert!(b.meta.shares(&a.meta));
        let check = s.checks.get(&PairRef("node-2", "service:web-2")).unwrap();
        assert!(check.service_tags.shares(&b.tags));
        assert_eq!(check.to_api().service_tags, vec!["v1", "primary"]);
    }

    /// One allocation per folded name or ID, whichever table or index holds it; after a
    /// restore too.
    #[test]
    fn tables_share_their_keys() {
        let store = Store::new();
        register(&store, 1, "Node-1", "Web-1");
        for s in [
            store.inner.root(),
            Arc::new(crate::snapshot::decode(&store.dump()).unwrap()),
        ] {
            let (node, _) = s.nodes.get_key_value("node-1").unwrap();
            let (service, _) = s
                .services
                .get_key_value(&PairRef("node-1", "web-1"))
                .unwrap();
            let (check, _) = s
                .checks
                .get_key_value(&PairRef("node-1", "service:web-1"))
                .unwrap();
            let by_name = s
                .services_by_name
                .get("web")
                .unwrap()
                .iter()
                .next()
                .unwrap();
            let by_service = s.checks_by_service.iter().next().unwrap();
            for n in [&service.0, &check.0, &by_name.0, &by_service.0] {
                assert!(Arc::ptr_eq(node, n));
            }
            assert!(Arc::ptr_eq(&service.1, &by_name.1));
            assert!(Arc::ptr_eq(&service.1, &by_service.1));
            assert!(Arc::ptr_eq(&check.1, &by_service.2));
        }
        // Records share their keys too, when they spell them the same.
        register(&store, 2, "node-2", "web-2");
        let s = store.inner.root();
        let (key, svc) = s
            .services
            .get_key_value(&PairRef("node-2", "web-2"))
            .unwrap();
        assert!(Arc::ptr_eq(&svc.node, &key.0) && Arc::ptr_eq(&svc.id, &key.1));
        let (key, check) = s
            .checks
            .get_key_value(&PairRef("node-2", "service:web-2"))
            .unwrap();
        assert!(Arc::ptr_eq(&check.node, &key.0) && Arc::ptr_eq(&check.check_id, &key.1));
        assert!(Arc::ptr_eq(&check.service_id, &svc.id));
        assert!(Arc::ptr_eq(&check.service_name, &svc.name));
        // Spelled otherwise, a record keeps its own spelling.
        let svc = s.services.get(&PairRef("node-1", "web-1")).unwrap();
        assert_eq!((&*svc.node, &*svc.id), ("Node-1", "Web-1"));
    }
}
