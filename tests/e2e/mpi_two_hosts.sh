# The multi-machine path of MPI training (docs/parallel.md), on one machine:
# two network namespaces stand for two hosts (10.77.0.1 and 10.77.0.2 on a
# veth pair), mpirun starts in the first and reaches the second through an rsh
# agent script (`ip netns exec`), and the ranks talk over TCP (btl tcp).  Two
# epochs of specs/ldl_mlp.dldl on one rank per "host" match one process within
# 1e-5.  This is the README's multi-node example.  Skipped, saying so, without
# mpirun, the MPI plugin or the right to create namespaces (root, CAP_SYS_ADMIN).
. "$(dirname "$0")/lib.sh"
if ! command -v mpirun > /dev/null || [ ! -e build/dldl_mpi.so ]; then
    echo "SKIPPED: mpirun or build/dldl_mpi.so missing (install openmpi-bin libopenmpi-dev, then make)"
    exit 0
fi
a=dldla$$ b=dldlb$$
if ! ip netns add "$a" 2> /dev/null; then
    echo "SKIPPED: cannot create network namespaces here (needs root and ip netns)"
    exit 0
fi
trap 'ip netns del "$a" 2> /dev/null; ip netns del "$b" 2> /dev/null; rm -rf "$work"' EXIT
ip netns add "$b"
ip link add "v$a" type veth peer name "v$b"
ip link set "v$a" netns "$a" && ip link set "v$b" netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev "v$a" && ip -n "$b" addr add 10.77.0.2/24 dev "v$b"
for n in "$a" "$b"; do ip -n "$n" link set lo up && ip -n "$n" link set "v$n" up; done
# the rsh agent: "agent HOST COMMAND..." runs COMMAND on HOST, here in its namespace
cat > "$work/agent" << EOF
#!/bin/sh
host=\$1; shift
case "\$host" in 10.77.0.1) ns=$a ;; 10.77.0.2) ns=$b ;; *) echo "agent: unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec "\$ns" sh -c "\$*"
EOF
chmod +x "$work/agent"
make -s build/tools/weights_diff
./dldlc specs/ldl_mlp.dldl -D file=ldl/SBU_3DFE.mat --ranks=2 -o "$work/mlp.plan"
./dldlrun "$work/mlp.plan" --train --epochs 2 --threads 1 --quiet --out "$work/m1" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
timeout 120 ip netns exec "$a" mpirun --allow-run-as-root --host 10.77.0.1,10.77.0.2 -np 2 \
    --mca plm_rsh_agent "$work/agent" --mca btl tcp,self \
    --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 -x DLDL_DATA -x DLDL_CACHE \
    ./dldlrun "$work/mlp.plan" --train --epochs 2 --threads 1 --out "$work/m2" > "$work/log" 2>&1 ||
    { cat "$work/log"; exit 1; }
grep -q "2 ranks (Open MPI" "$work/log" || { cat "$work/log"; echo "not two ranks"; exit 1; }
printf "ldl_mlp on two hosts (network namespaces, TCP) vs 1 process: "
build/tools/weights_diff "$work/m1/weights.safetensors" "$work/m2/weights.safetensors" 1e-5
