#!/bin/sh
# What the deployer pins, fetched from the nodes of compose.yaml once they run: each node's
# identity key (public), the cloud node's simulated platform key (public), and this
# deployer's own provider keys for the field (sancus) and edge (trustzone) nodes (secret:
# they derive your module keys there; mode 0600). irrigation.toml names the files in keys/.
#
#   sh keys.sh          # Docker Compose v2; COMPOSE="..." names another tool with exec and cp
set -eu
cd "$(dirname "$0")"
compose=${COMPOSE:-docker compose}
me=$(aex identity)
umask 077
mkdir -p keys
node_aex() {
    node=$1
    shift
    $compose exec -T "$node" /usr/local/bin/aex "$@"
}
for node in field edge cloud; do
    node_aex "$node" node identity --data-dir /var/lib/aex >"keys/$node.identity"
done
$compose cp cloud:/var/lib/aex/platform.pub keys/cloud-platform.pub
node_aex field node provider-key --data-dir /var/lib/aex --tee sancus --deployer "$me" >keys/field.key
node_aex edge node provider-key --data-dir /var/lib/aex --tee trustzone --deployer "$me" >keys/edge.key
echo "keys/: the nodes pinned, and your provider keys (secret) for deployer $me"
