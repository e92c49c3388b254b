#!/usr/bin/env bash
# make demo: a 3-manager shoal cluster on this machine's loopback addresses
# (127.0.0.11-13), state in a temporary folder. It shows node ls, kills the
# leader with SIGKILL, shows the new leader and that the state survived,
# brings the old leader back as a follower; then two workers join
# (127.0.0.14-15) and a service runs on them (tasks run in memory: the sim
# executor): spread, drain, a rolling update, a rollback and scaling. Then
# sticky IPs: a service on a network, one slot pinned; each slot keeps its
# IP through a drain, a leader kill (the new leader's rebuilt allocator
# state equals the old one's) and a scale 6 → 3 → 6; the demo fails if any
# IP changes. Last, real containers: a one-node cluster runs an echo service
# through the Docker engine and shoal's CNI plugins; each slot answers on its
# IP, and a docker kill brings the slot back with the same IP. Then across
# nodes: three nodes, each a network namespace on an underlay bridge
# (internal/testbed), one VXLAN segment; a task on node-1 reaches the others,
# netctl shows each node's overlay, and a drained node's task answers from its
# new node at the same IP; then the mesh: a client task reaches the service's
# VIP (balanced over its tasks), resolves its names inside its container, the
# published port answers on every node, and netctl check is clean. It stops
# and removes everything it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="$PWD/bin"
WORK="$(mktemp -d /tmp/shoal-demo.XXXXXX)"
PORT="${SHOAL_DEMO_PORT:-4242}"
declare -A PID

cleanup() {
  for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ctl() { local n=$1; shift; "$BIN/shoalctl" --socket "$WORK/m$n/control.sock" "$@"; }

start() { # start N [join flags...]
  local n=$1; shift
  start_as "manager-$n" "$n" "$@"
}

start_as() { # start_as HOSTNAME N [join flags...]
  local host=$1 n=$2; shift 2
  mkdir -p "$WORK/m$n"
  "$BIN/shoald" -d "$WORK/m$n" --hostname "$host" \
    --listen-remote-api "127.0.0.1$n:$PORT" --listen-control-api "$WORK/m$n/control.sock" \
    --dispatcher-heartbeat 1s --executor sim "$@" >>"$WORK/m$n/shoald.log" 2>&1 &
  PID[$n]=$!
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then echo "timed out waiting for $what" >&2; tail -n 20 "$WORK"/m*/shoald.log >&2; exit 1; fi
    sleep 0.2
  done
}

say "starting manager-1: a new cluster (root CA, join tokens, raft)"
start 1
wait_for 30 "manager-1" ctl 1 cluster info
ctl 1 cluster info
TOKEN=$(ctl 1 cluster join-token -q manager)
say "joining manager-2 and manager-3 with the manager join token"
start 2 --join-addr "127.0.0.11:$PORT" --join-token "$TOKEN"
wait_for 30 "manager-2" ctl 2 cluster info
start 3 --join-addr "127.0.0.11:$PORT" --join-token "$TOKEN"
wait_for 30 "manager-3" ctl 3 cluster info
ready3() { [ "$(ctl 1 node ls | grep -c Ready)" = 3 ]; }
wait_for 30 "three ready managers" ready3
ctl 1 node ls

say "writing state: a label on manager-2"
ctl 1 node update --label-add demo=survives manager-2

leader_n() {
  local l; l=$(ctl "$1" node ls | awk '/Leader/ {for (i=1;i<=NF;i++) if ($i ~ /^manager-/) print $i}')
  echo "${l#manager-}"
}
OLD=$(leader_n 1)
ALIVE=$(( OLD == 1 ? 2 : 1 ))
say "killing the leader, manager-$OLD, with SIGKILL"
T0=$(date +%s.%N)
kill -9 "${PID[$OLD]}"; wait "${PID[$OLD]}" 2>/dev/null || true; unset "PID[$OLD]"
new_leader() { local l; l=$(leader_n "$ALIVE"); [ -n "$l" ] && [ "$l" != "$OLD" ]; }
wait_for 30 "a new leader" new_leader
# The first accepted write after the kill.
wait_for 30 "a write" ctl "$ALIVE" node update --label-add after=failover "manager-$ALIVE"
T1=$(date +%s.%N)
echo "new leader: manager-$(leader_n "$ALIVE"); first write accepted $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')s after the kill"
gone() { ctl "$ALIVE" node ls | grep "manager-$OLD" | grep -q "Down.*Unreachable"; }
wait_for 30 "manager-$OLD to be seen down" gone
ctl "$ALIVE" node ls
say "the state survived: manager-2's labels"
ctl "$ALIVE" node inspect manager-2 --format json | grep -A3 '"labels"'

say "restarting manager-$OLD from its state folder: it rejoins as a follower"
start "$OLD"
reachable() { [ "$(ctl "$ALIVE" node ls | grep -c -E 'Ready .*(Leader|Reachable)')" = 3 ]; }
wait_for 30 "manager-$OLD to be reachable" reachable
wait_for 30 "manager-$OLD to answer" ctl "$OLD" node ls
ctl "$OLD" node ls

say "two workers join with the worker join token"
WTOKEN=$(ctl "$ALIVE" cluster join-token -q worker)
start_as worker-4 4 --join-addr "127.0.0.11:$PORT" --join-token "$WTOKEN"
start_as worker-5 5 --join-addr "127.0.0.11:$PORT" --join-token "$WTOKEN"
ready5() { [ "$(ctl "$ALIVE" node ls | grep -c Ready)" = 5 ]; }
wait_for 30 "five ready nodes" ready5
say "draining the managers: tasks run on the workers only"
ctl "$ALIVE" node drain manager-1 manager-2 manager-3
ctl "$ALIVE" node ls

say "service create: 6 replicas, spread over the two workers (the CLI follows convergence)"
ctl "$ALIVE" service create --name web --replicas 6 --update-parallelism 2 --update-delay 1s sim/web:1
ctl "$ALIVE" service ls
ctl "$ALIVE" service ps web

say "draining worker-5: its tasks move to worker-4, same slots"
ctl "$ALIVE" node drain worker-5
moved() { ! ctl "$ALIVE" service ps --filter desired-state=running web | grep -q worker-5; }
wait_for 30 "web's tasks to leave worker-5" moved
ctl "$ALIVE" service ps --filter desired-state=running web
ctl "$ALIVE" node activate worker-5

say "rolling update to sim/web:2, two tasks at a time, 1s apart"
ctl "$ALIVE" service update --image sim/web:2 web
ctl "$ALIVE" service ps web | head -n 8

say "service rollback: back to sim/web:1"
ctl "$ALIVE" service rollback web
ctl "$ALIVE" service ls

say "scale 6 → 2 → 6: the slots come back as 1..6"
ctl "$ALIVE" service scale web=2
ctl "$ALIVE" service scale web=6
ctl "$ALIVE" service ps --filter desired-state=running web
ctl "$ALIVE" service rm web

# Sticky IPs: each slot of a service keeps its address on a network through
# a drain, a leader kill and a scale-down and back up. A snapshot is one
# "SLOT NODE IP" line per running task, taken once the tasks settled, with
# each task's address checked against its slot's binding; compare prints
# two snapshots side by side and fails if any slot's IP changed.
nctl() { local n=$1; shift; "$BIN/netctl" --socket "$WORK/m$n/control.sock" "$@"; }
fail() { echo "demo failed: $*" >&2; exit 1; }

task_ips() { # task_ips: "SLOT NODE IP" for each running task of web that has both
  ctl "$ALIVE" service ps --filter desired-state=running web |
    awk 'NR > 1 && $5 ~ /^front=/ && $7 == "Running" { sub(/^web\./, "", $2); sub(/^front=/, "", $5); print $2, $4, $5 }' |
    sort -n
}
settled() { # settled N [AWAY]: slots 1..N each run one task with an address, none on node AWAY
  task_ips | awk -v n="$1" -v away="${2:-}" '$1 >= 1 && $1 <= n && !seen[$1]++ && $2 != away { ok++ } END { exit !(ok == n && NR == n) }'
}
snap() { # snap NAME N [AWAY]: waits for settled, then writes the snapshot to $WORK/snap.NAME
  wait_for 30 "web to settle on $2 tasks" settled "$2" "${3:-}"
  task_ips >"$WORK/snap.$1"
  nctl "$ALIVE" ip ls --service web | awk 'NR > 1 && $2 ~ /^[0-9]+$/ { print $2, $4 }' >"$WORK/bindings.$1"
  awk 'NR == FNR { bound[$1] = $2; next }
       bound[$1] != $3 { printf "web.%s runs with %s but its binding says %s\n", $1, $3, bound[$1]; bad = 1 }
       END { exit bad }' "$WORK/bindings.$1" "$WORK/snap.$1" >&2 || fail "a task's address differs from its slot's binding"
}
compare() { # compare BEFORE AFTER: each slot's node and IP in both snapshots
  awk 'BEGIN { printf "%-5s %-12s %-12s %-15s %s\n", "SLOT", "NODE BEFORE", "NODE AFTER", "IP BEFORE", "IP AFTER" }
       NR == FNR { node[$1] = $2; ip[$1] = $3; next }
       { same = ip[$1] == $3 ? "same" : "CHANGED"; if (same != "same") bad++; if (node[$1] != $2) moved++
         printf "%-5s %-12s %-12s %-15s %-15s %s\n", $1, node[$1], $2, ip[$1], $3, same }
       END { printf "%d of %d slots moved to another node; ", moved, FNR
             if (bad) printf "%d changed IP\n", bad; else print "every slot kept its IP"
             exit bad > 0 }' \
    "$WORK/snap.$1" "$WORK/snap.$2" || fail "a slot's IP changed"
}

say "sticky IPs: a network, and 6 replicas on it with slot 1 pinned to 198.18.10.100"
ctl "$ALIVE" network create --driver overlay --subnet 198.18.10.0/24 front
ctl "$ALIVE" service create -q --name web --replicas 6 --network front --ip 1=198.18.10.100 sim/web:1
snap start 6
nctl "$ALIVE" ip ls --service web

AWAY=$(awk '$1 == 1 { print $2 }' "$WORK/snap.start")
say "draining $AWAY, slot 1's node: its slots move to the other worker and keep their IPs"
ctl "$ALIVE" node drain "$AWAY"
snap drained 6 "$AWAY"
compare start drained
ctl "$ALIVE" node activate "$AWAY"

L=$(leader_n "$ALIVE")
say "killing the leader, manager-$L: the new leader rebuilds its allocator from the replicated records"
nctl "$L" allocator state --format json >"$WORK/allocator.before"
kill -9 "${PID[$L]}"; wait "${PID[$L]}" 2>/dev/null || true; unset "PID[$L]"
OLD=$L; ALIVE=$(( L == 1 ? 2 : 1 ))
wait_for 30 "a new leader" new_leader
L=$(leader_n "$ALIVE")
wait_for 30 "manager-$L's allocator" nctl "$L" allocator state
nctl "$L" allocator state | grep -E '^(Leader|Rebuild duration|Inconsistencies):'
nctl "$L" allocator state --format json >"$WORK/allocator.after"
if ! cmp -s "$WORK/allocator.before" "$WORK/allocator.after"; then
  { echo "manager-$OLD's allocator state:"; cat "$WORK/allocator.before"; echo "manager-$L's:"; cat "$WORK/allocator.after"; } >&2
  fail "manager-$L's rebuilt allocator state differs from manager-$OLD's before the kill"
fi
echo "its allocator state equals manager-$OLD's before the kill"
snap failover 6
compare drained failover

say "scale 6 → 3: slots 4-6 are gone, their IPs are held for them"
ctl "$ALIVE" service scale -q web=3
snap down 3
nctl "$ALIVE" ip ls --service web | tee "$WORK/held"
[ "$(awk '$5 == "held"' "$WORK/held" | wc -l)" = 3 ] || fail "slots 4-6 are not held"
say "scale 3 → 6: slots 4-6 come back with the same IPs"
ctl "$ALIVE" service scale -q web=6
snap up 6
compare failover up
say "slot 1's history: every task that held 198.18.10.100"
nctl "$ALIVE" ip history web 1

say "real containers: a one-node cluster (manager and worker) running tasks through Docker and shoal's CNI plugins"
SVC="echo-demo-$$"
DEMO_IMAGE="shoal-echo:demo-$$"
docker_cleanup() {
  docker ps -aq --filter "label=dev.shoal.service.name=$SVC" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker rmi -f "$DEMO_IMAGE" >/dev/null 2>&1 || true
  docker images -q shoal/pause | xargs -r docker rmi >/dev/null 2>&1 || true # the node's, built from its shoald
  if [ -n "${BRIDGE:-}" ]; then
    ip link del "$BRIDGE" 2>/dev/null || true
    for t in filter:SHOAL-FORWARD nat:SHOAL-POSTROUTING; do
      iptables -t "${t%%:*}" -S "${t#*:}" 2>/dev/null | grep "shoal-bridge:$BRIDGE" | sed 's/^-A //; s/"//g' |
        while read -r rule; do iptables -t "${t%%:*}" -D $rule; done
    done
  fi
}
trap 'docker_cleanup; cleanup' EXIT
mkdir -p "$WORK/image"
cp "$BIN/shoal-echo" "$WORK/image/"
printf 'FROM scratch\nCOPY shoal-echo /shoal-echo\nENTRYPOINT ["/shoal-echo"]\n' >"$WORK/image/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$DEMO_IMAGE" "$WORK/image" >/dev/null 2>"$WORK/build.err" ||
  { cat "$WORK/build.err" >&2; fail "docker build of the echo image"; }
echo "built $DEMO_IMAGE from scratch with the project's own echo server (no registry)"
start_as docker-node 9 --executor docker --cni-bin-dir "$BIN/cni" --pull never
wait_for 30 "docker-node" ctl 9 cluster info
ctl 9 network create --driver overlay --subnet 198.18.20.0/24 echo-net >/dev/null
BRIDGE="shl$(ctl 9 network ls -q | head -1 | cut -c1-10)"
ctl 9 service create -q -d --name "$SVC" --replicas 3 --network echo-net --ip 1=198.18.20.100 "$DEMO_IMAGE" >/dev/null
echo_ips() { ctl 9 service ps --filter desired-state=running "$SVC" | awk 'NR > 1 && $7 == "Running" { sub(/^echo-net=/, "", $5); sub(/\/.*/, "", $5); n = split($2, p, "."); print p[n], $5 }' | sort -n; }
three_answer() { [ "$(echo_ips | wc -l)" = 3 ] && for ip in $(echo_ips | awk '{ print $2 }'); do curl -sf -m 1 "http://$ip:8080/" >/dev/null || return 1; done; }
wait_for 60 "3 echo containers answering on their IPs" three_answer
docker ps --filter "label=dev.shoal.service.name=$SVC" --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
echo_ips >"$WORK/echo.before"
while read -r slot ip; do printf 'slot %s at %-15s answers: %s\n' "$slot" "$ip" "$(curl -s -m 1 "http://$ip:8080/")"; done <"$WORK/echo.before"
VICTIM=$(docker ps -q --filter "label=dev.shoal.service.name=$SVC" --filter label=dev.shoal.slot=2 --filter label=dev.shoal.role=task)
say "docker kill of slot 2's container: shoal starts a new task, with the same IP"
docker kill "$VICTIM" >/dev/null
replaced() { [ -z "$(docker ps -q --filter id="$VICTIM")" ] && three_answer && [ -n "$(docker ps -q --filter "label=dev.shoal.service.name=$SVC" --filter label=dev.shoal.slot=2 --filter label=dev.shoal.role=task)" ]; }
wait_for 60 "slot 2 back" replaced
echo_ips >"$WORK/echo.after"
printf 'slot 2 now: %s\n' "$(curl -s -m 1 "http://$(awk '$1 == 2 { print $2 }' "$WORK/echo.after"):8080/")"
cmp -s "$WORK/echo.before" "$WORK/echo.after" || fail "an echo slot's IP changed: $(paste "$WORK/echo.before" "$WORK/echo.after")"
echo "every slot kept its IP"
say "service rm: no container, sandbox or veth left"
ctl 9 service rm "$SVC" >/dev/null
gone() { [ -z "$(docker ps -aq --filter "label=dev.shoal.service.name=$SVC")" ] && [ -z "$(ip -br link show master "$BRIDGE" 2>/dev/null)" ]; }
wait_for 30 "the service's containers and veths removed" gone
echo "nothing left on $BRIDGE; docker ps shows none of $SVC's containers"

say "across nodes: three nodes, each a network namespace on an underlay bridge; one VXLAN segment joins them"
BED="shoal-demo-$$"
SVC2="echo-bed-$$"
go build -o "$WORK/bed" ./test/demo/bed
bed_cleanup() {
  for n in 21 22 23; do [ -n "${PID[$n]:-}" ] && { kill -9 "${PID[$n]}"; wait "${PID[$n]}"; } 2>/dev/null || true; unset "PID[$n]"; done
  for s in "$SVC2" "${CLI2:-}"; do [ -n "$s" ] && docker ps -aq --filter "label=dev.shoal.service.name=$s" | xargs -r docker rm -f >/dev/null 2>&1 || true; done
  for pin in "$WORK"/m2?/netns/*; do [ -e "$pin" ] && { umount -l "$pin" 2>/dev/null || true; }; done
  [ -x "$WORK/bed" ] && "$WORK/bed" down "$BED" || true
}
trap 'bed_cleanup; docker_cleanup; cleanup' EXIT
"$WORK/bed" up "$BED" 3 >"$WORK/bed.addrs"
addr() { awk -v n="$1" '$1 == n { print $2 }' "$WORK/bed.addrs"; }
start_node() { # start_node N HOSTNAME [flags...]: shoald inside node N's namespace (its network only)
  local n=$1 host=$2; shift 2
  mkdir -p "$WORK/m2$n"
  nsenter --net="/run/netns/$BED-n$n" -- "$BIN/shoald" -d "$WORK/m2$n" --hostname "$host" \
    --listen-remote-api "$(addr "$n"):$PORT" --listen-control-api "$WORK/m2$n/control.sock" \
    --dispatcher-heartbeat 1s --executor docker --cni-bin-dir "$BIN/cni" --pull never "$@" >>"$WORK/m2$n/shoald.log" 2>&1 &
  PID[2$n]=$!
}
cat "$WORK/bed.addrs" | sed 's/^/node /'
start_node 1 node-1
wait_for 30 "node-1" ctl 21 cluster info
BTOKEN=$(ctl 21 cluster join-token -q worker)
start_node 2 node-2 --join-addr "$(addr 1):$PORT" --join-token "$BTOKEN"
start_node 3 node-3 --join-addr "$(addr 1):$PORT" --join-token "$BTOKEN"
ready3() { [ "$(ctl 21 node ls | grep -c Ready)" = 3 ]; }
wait_for 60 "three ready nodes" ready3
ctl 21 network create --driver overlay --subnet 198.18.30.0/24 across >/dev/null
ctl 21 service create -q -d --name "$SVC2" --replicas 3 --network across --publish published=8080,target=8080 "$DEMO_IMAGE" >/dev/null
bed_tasks() { # "NODE TASK IP" of each running task
  ctl 21 service ps --no-trunc --filter desired-state=running "$SVC2" |
    awk 'NR > 1 && $7 == "Running" { sub(/^across=/, "", $5); sub(/\/.*/, "", $5); sub(/^node-/, "", $4); print $4, $1, $5 }' | sort -n
}
ask_from() { # ask_from NODE TASK IP: GET IP:8080 from inside TASK's namespace on NODE
  nsenter --net="$WORK/m2$1/netns/$2" -- curl -sf -m 1 "http://$3:8080/"
}
spread() { [ "$(bed_tasks | awk '{ print $1 }' | sort -u | wc -l)" = 3 ]; }
wait_for 120 "one echo task on each node" spread
bed_tasks >"$WORK/bed.before"
read -r _ CLIENT CLIENT_IP < <(head -1 "$WORK/bed.before")
all_answer() { while read -r n t ip; do ask_from 1 "$CLIENT" "$ip" >/dev/null || return 1; done <"$WORK/bed.before"; }
wait_for 30 "node-1's task reaching every task" all_answer
while read -r n t ip; do printf 'from node-1 to node-%s at %-13s %s\n' "$n" "$ip" "$(ask_from 1 "$CLIENT" "$ip")"; done <"$WORK/bed.before"
NCTL() { "$BIN/netctl" --socket "$WORK/m21/control.sock" "$@"; }
NCTL overlay ls
NCTL overlay inspect across --node node-2 | tail -n 12

say "draining node-3: its task comes up on another node with the same IP, and node-1's task reaches it there"
read -r _ OLDT MOVED_IP < <(awk '$1 == 3' "$WORK/bed.before")
ctl 21 node drain node-3 >/dev/null
moved_bed() { bed_tasks | awk -v ip="$MOVED_IP" '$3 == ip && $1 != 3' | grep -q . && [ "$(ask_from 1 "$CLIENT" "$MOVED_IP" | grep -c "$OLDT")" = 0 ] && ask_from 1 "$CLIENT" "$MOVED_IP" >/dev/null; }
wait_for 60 "the moved task answering at $MOVED_IP" moved_bed
printf 'node-1 to %s now: %s\n' "$MOVED_IP" "$(ask_from 1 "$CLIENT" "$MOVED_IP")"
bed_tasks | awk '{ printf "node-%s %s %s\n", $1, $2, $3 }'
for n in 1 2 3; do
  d=$(NCTL overlay inspect across --node "node-$n" | tail -n 1)
  echo "node-$n: $d"
  [ "$d" = "0 differences" ] || fail "node-$n's overlay differs from the desired one"
done

say "the service mesh: $SVC2's VIP balances over its tasks, its names resolve inside containers, its port answers on every node"
CLI2="client-bed-$$"
ctl 21 service create -q -d --name "$CLI2" --network across "$DEMO_IMAGE" >/dev/null
client_task() { # "NODE TASK" of the client's running task
  ctl 21 service ps --no-trunc --filter desired-state=running "$CLI2" | awk 'NR > 1 && $7 == "Running" { sub(/^node-/, "", $4); print $4, $1 }'
}
client_running() { [ -n "$(client_task)" ]; }
wait_for 60 "the client task running" client_running
read -r CN CT < <(client_task)
NCTL vip ls
VIP=$(NCTL vip ls | awk -v s="$SVC2" '$1 == s { print $3 }')
[ -n "$VIP" ] || fail "no VIP for $SVC2"
vip_answers() { ask_from "$CN" "$CT" "$VIP" >/dev/null; }
wait_for 30 "the VIP answering from node-$CN" vip_answers
for i in 1 2 3 4 5 6; do printf 'client on node-%s → %s: %s\n' "$CN" "$VIP" "$(ask_from "$CN" "$CT" "$VIP")"; done
CCTR=$(docker ps -q --filter "label=dev.shoal.task.id=$CT" --filter "label=dev.shoal.role=task")
for name in "$SVC2" "tasks.$SVC2" "1.$SVC2"; do
  printf 'inside the client container, %-24s → %s\n' "$name" "$(docker exec "$CCTR" /shoal-echo -lookup "$name")"
done
for n in 1 2 3; do
  printf 'node-2 → node-%s:8080 (ingress): %s\n' "$n" "$(nsenter --net="/run/netns/$BED-n2" -- curl -sf -m 2 "http://$(addr "$n"):8080/")"
done
NCTL ingress ls
clean() { NCTL check >/dev/null; }
wait_for 30 "netctl check clean on every node" clean
NCTL check

say "stopping everything"
