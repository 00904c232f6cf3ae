#!/usr/bin/env python3
"""Where one write's time goes: a lone writer's steps across a 3-server cluster.

  write_trace.py client HOST:PORT N OUT   sequential KV PUTs on one keep-alive connection;
                                          writes "send_ns recv_ns" per request to OUT
  write_trace.py analyse DIR              lines the client's times up with the servers'
                                          trace-*.tsv files (PROCONSUL_WRITE_TRACE=DIR) and
                                          prints p50/p99 per step

The servers' records carry wall-clock nanoseconds and the log index they concern (see
crates/raft/src/trace.rs); the client's requests are matched to indexes by time (each
proposal starts inside exactly one request's window: there is one writer). Driven by
bench/write-trace.sh.
"""
import bisect
import collections
import glob
import http.client
import os
import sys
import time


def client(addr, n, out):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port))
    rows = []
    for i in range(n):
        body = b"value-%d" % i
        t0 = time.time_ns()
        conn.request("PUT", "/v1/kv/trace/key%d" % (i % 100), body)
        r = conn.getresponse()
        r.read()
        t1 = time.time_ns()
        if r.status != 200:
            sys.exit("PUT failed: %d" % r.status)
        rows.append((t0, t1))
    with open(out, "w") as f:
        for t0, t1 in rows:
            f.write("%d %d\n" % (t0, t1))
    # The same client's round trip for a read the leader answers from memory: what HTTP and
    # this client cost without Raft.
    reads = []
    for i in range(min(n, 1000)):
        t0 = time.time_ns()
        conn.request("GET", "/v1/kv/trace/key%d" % (i % 100))
        r = conn.getresponse()
        r.read()
        reads.append((time.time_ns() - t0) / 1000.0)
    with open(out + ".reads", "w") as f:
        f.write("%.1f %.1f\n" % (pct(reads, 50), pct(reads, 99)))


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Node:
    """One server's records: step -> sorted [(index, ns, peer)]."""

    def __init__(self, path):
        self.id = int(os.path.basename(path)[len("trace-"):-len(".tsv")])
        self.steps = collections.defaultdict(list)
        with open(path) as f:
            for line in f:
                ns, step, index, peer = line.split("\t")
                self.steps[step].append((int(ns), int(index), int(peer)))
        for v in self.steps.values():
            v.sort()
        self.times = {k: [r[0] for r in v] for k, v in self.steps.items()}

    def first(self, step, index, after=0, peer=None):
        """The earliest record of `step` at or after `after` whose index covers `index`."""
        recs = self.steps.get(step, ())
        for k in range(bisect.bisect_left(self.times.get(step, ()), after), len(recs)):
            ns, i, p = recs[k]
            if i >= index and (peer is None or p == peer):
                return ns
        return None


def analyse(d):
    nodes = [Node(p) for p in glob.glob(os.path.join(d, "trace-*.tsv"))]
    leaders = [n for n in nodes if n.steps.get("propose_end")]
    if len(leaders) != 1:
        sys.exit("expected one node with proposals, found %d" % len(leaders))
    leader = leaders[0]
    followers = {n.id: n for n in nodes if n is not leader}
    pstart = {i: ns for ns, i, _ in leader.steps["propose_start"]}
    pend = {i: ns for ns, i, _ in leader.steps["propose_end"]}
    reqs = []
    client_file = os.path.join(d, "client.txt")
    if os.path.exists(client_file):
        with open(client_file) as f:
            for line in f:
                a, b = line.split()
                reqs.append((int(a), int(b)))
    else:
        # Another client (wrk -c1): every proposal is one, with no client-side times.
        reqs = [(ns, pend[i]) for ns, i, _ in leader.steps["propose_start"] if i in pend]
    starts = [r[0] for r in reqs]

    steps = collections.OrderedDict()

    def add(name, a, b):
        if a is not None and b is not None:
            steps.setdefault(name, []).append((b - a) / 1000.0)

    # Only the kv writes of the client (not the leader's own reconcile writes).
    for index in sorted(pend):
        p0 = pstart[index]
        k = bisect.bisect_right(starts, p0) - 1
        if k < 0 or not (reqs[k][0] <= p0 <= reqs[k][1]):
            continue
        send, recv = reqs[k]
        la = leader.first("leader_append", index, p0)
        ls0 = leader.first("sync_start", index, p0)
        ls1 = leader.first("sync_end", index, p0)
        # The follower whose ack arrived first is the one that made the commit.
        acks = []
        for fid in followers:
            a = leader.first("ack_recv", index, p0, fid)
            if a is not None:
                acks.append((a, fid))
        if not acks:
            continue
        ack, fid = min(acks)
        f = followers[fid]
        # Before the change the network waited for the leader's fsync between these two.
        ready = leader.first("ship_ready", index, p0, fid) or leader.first("ship_sent", index, p0, fid)
        sent = leader.first("ship_sent", index, p0, fid)
        frecv = f.first("follower_recv", index, p0)
        fapp = f.first("follower_append", index, p0)
        fs1 = f.first("sync_end", index, p0)
        frep = f.first("follower_reply", index, p0)
        done = leader.first("ack_done", index, p0, fid) or ack
        commit = leader.first("commit", index, p0)
        a0 = leader.first("apply_start", index, p0)
        a1 = leader.first("applied", index, p0)
        pe = pend[index]
        add("01 client send -> propose (HTTP in, routing, pre-apply)", send, p0)
        add("02 propose -> leader append (openraft core)", p0, la)
        add("03 leader append -> leader fsync start", la, ls0)
        add("04 leader fsync (write txn + fdatasync)", ls0, ls1)
        add("05 leader append -> ship (replication task)", la, ready)
        add("06 ship -> on the wire (waits for leader fsync?)", ready, sent)
        add("07 wire -> follower decoded", sent, frecv)
        add("08 follower decoded -> follower append", frecv, fapp)
        add("09 follower append -> follower fsync done", fapp, fs1)
        add("10 follower fsync done -> follower reply", fs1, frep)
        add("11 follower reply -> ack at leader", frep, ack)
        add("12 ack -> ack to openraft (waits for leader fsync?)", ack, done)
        add("13 ack to openraft -> commit", done, commit)
        add("14 commit -> apply start", commit, a0)
        add("15 apply (incl. durability gate)", a0, a1)
        add("16 applied -> propose returns", a1, pe)
        add("17 propose returns -> client got reply (HTTP out)", pe, recv)
        add("-- leader append -> commit", la, commit)
        add("-- propose -> propose returns", p0, pe)
        add("== client send -> reply", send, recv)

    n = len(steps.get("-- propose -> propose returns", []))
    print("writes traced: %d (lone writer, 1 connection%s)" % (n, "" if os.path.exists(client_file) else "; no client times"))
    print("%-60s %9s %9s" % ("step (µs)", "p50", "p99"))
    for name, xs in steps.items():
        print("%-60s %9.1f %9.1f" % (name, pct(xs, 50), pct(xs, 99)))
    reads = os.path.join(d, "client.txt.reads")
    if os.path.exists(reads):
        with open(reads) as f:
            r50, r99 = f.read().split()
        print("%-60s %9s %9s" % ("(GET of a key from the leader's memory, same client)", r50, r99))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) >= 2 and sys.argv[1] == "analyse":
        analyse(sys.argv[2])
    else:
        sys.exit(__doc__)
