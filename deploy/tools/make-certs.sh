#!/bin/sh
# make-certs.sh — a private CA and the certificates warmpool's mutual TLS
# needs, with the openssl command line only (docs/security.md, "TLS").
#
#   deploy/tools/make-certs.sh [-d DIR] [--days N] [--client NAME] [--no-ca] SERVER_NAME[,ALT...]...
#
# In DIR (default ./warmpool-tls):
#   ca.crt ca.key             the CA (made once: kept when present; --no-ca: it must exist)
#   NAME.crt NAME.key         one server certificate per SERVER_NAME (a sandboxd node, or poold's
#                             public listener): subjectAltName = every comma-separated name
#                             (IP addresses become IP entries), extendedKeyUsage serverAuth
#   CLIENT.crt CLIENT.key     poold's client certificate (--client, default "poold"), clientAuth
#
# Keys are EC P-256, mode 0600; certificates last --days (default 365; the CA
# ten times that). A negative --days makes a certificate that has already
# expired (for tests). Run again with new names to add servers under the same
# CA; delete a NAME.crt to renew it.
#
# Example, two nodes and poold's public name:
#   deploy/tools/make-certs.sh -d /etc/warmpool/tls node-a.example,10.0.0.5 node-b.example api.example
#   sandboxd.conf:  listen_tcp = tls://0.0.0.0:9091  tls_cert = /etc/warmpool/tls/node-a.example.crt
#                   tls_key = …/node-a.example.key  tls_client_ca = …/ca.crt  tls_client_name = poold
#   poold.conf:     [node:a] url = https://node-a.example:9091   ([poold] tls_ca, tls_client_cert, tls_client_key)
set -eu

dir=./warmpool-tls
days=365
client=poold
make_ca=yes
servers=

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
	-d) dir=$2; shift 2 ;;
	--days) days=$2; shift 2 ;;
	--client) client=$2; shift 2 ;;
	--no-ca) make_ca=no; shift ;;
	-h | --help) usage 0 ;;
	-*) echo "make-certs.sh: unknown option $1" >&2; usage 2 ;;
	*) servers="$servers $1"; shift ;;
	esac
done

case "$days" in
-[0-9]* | [0-9]*) ;;
*) echo "make-certs.sh: --days wants a number of days, not \`$days\`" >&2; exit 2 ;;
esac
valid_name() {
	case "$1" in
	"" | *[!A-Za-z0-9.:_-]*) return 1 ;;
	esac
	return 0
}
valid_name "$client" || { echo "make-certs.sh: bad client name \`$client\`" >&2; exit 2; }

umask 077
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

if [ ! -e ca.crt ]; then
	[ "$make_ca" = yes ] || { echo "make-certs.sh: --no-ca and no $dir/ca.crt" >&2; exit 1; }
	key ca.key
	ca_days=$((days > 0 ? days * 10 : 3650))
	openssl req -x509 -new -key ca.key -out ca.crt -days "$ca_days" -subj "/CN=warmpool CA" \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	chmod 644 ca.crt
	echo "  CA      $dir/ca.crt"
fi

# sign NAME SAN EKU: NAME.crt signed by the CA for `days`
sign() {
	ext=$(mktemp)
	cat >"$ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = $3
subjectAltName = $2
EOF
	key "$1.key"
	openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
		-extfile "$ext" -out "$1.crt" 2>/dev/null
	rm -f "$ext" "$1.csr"
	chmod 644 "$1.crt"
	echo "  CERT    $dir/$1.crt ($3: $2, $(openssl x509 -in "$1.crt" -noout -enddate))"
}

san_of() {
	out=
	old_ifs=$IFS
	IFS=,
	for n in $1; do
		valid_name "$n" || { echo "make-certs.sh: bad name \`$n\`" >&2; exit 2; }
		case "$n" in
		*:* | *[0-9].[0-9]*[0-9]) if echo "$n" | grep -Eq '^[0-9.]+$|:'; then e="IP:$n"; else e="DNS:$n"; fi ;;
		*) e="DNS:$n" ;;
		esac
		out="${out:+$out,}$e"
	done
	IFS=$old_ifs
	echo "$out"
}

[ -e "$client.crt" ] || sign "$client" "DNS:$client" clientAuth
for s in $servers; do
	name=${s%%,*}
	[ -e "$name.crt" ] && { echo "  kept    $dir/$name.crt (exists)"; continue; }
	sign "$name" "$(san_of "$s")" serverAuth
done
