#!/usr/bin/env bash
# tests/tls/make_certs.sh — makes the certificates the TLS tests and benchmarks use, with the openssl CLI.
# Usage: make_certs.sh DIR. Writes into DIR (created if need be), all PEM:
#   ca.pem                          the CA that signs everything below
#   server.pem server.key           for CN localhost, SAN DNS:localhost and IP:127.0.0.1, valid 2 days
#   client.pem client.key           a client certificate from ca.pem, valid 2 days
#   other-ca.pem                    a second CA, that memqd does not trust
#   other-client.pem other-client.key   a client certificate from other-ca.pem
#   expired-client.pem expired-client.key   from ca.pem, valid only in January 2020
# OpenSSL 3.0's x509 cannot date a certificate in the past, so the expired one
# is signed with `openssl ca`, whose -startdate/-enddate can.
set -euo pipefail
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# A self-signed CA: make_ca NAME "CN".
make_ca() {
  new_key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# A leaf signed by a CA: make_leaf NAME CA "CN" EXTENSIONS.
make_leaf() {
  new_key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$3" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

client_extensions="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

make_ca ca "memq test CA"
make_ca other-ca "memq other CA"
make_leaf server ca localhost "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
make_leaf client ca "memq test client" "$client_extensions"
make_leaf other-client other-ca "memq other client" "$client_extensions"

# The expired client: `openssl ca` with a throwaway database.
mkdir -p expired-ca
: > expired-ca/index.txt
cat > expired-ca/ca.cnf <<CNF
[ca]
default_ca = expired
[expired]
database = expired-ca/index.txt
new_certs_dir = expired-ca
rand_serial = yes
default_md = sha256
policy = anything
x509_extensions = client
[anything]
commonName = supplied
[client]
$client_extensions
CNF
new_key expired-client.key
openssl req -new -key expired-client.key -out expired-client.csr -subj "/CN=memq expired client" 2>/dev/null
openssl ca -batch -notext -config expired-ca/ca.cnf -cert ca.pem -keyfile ca.key -in expired-client.csr \
  -out expired-client.pem -startdate 20200101000000Z -enddate 20200131000000Z 2>/dev/null
rm -rf expired-ca expired-client.csr
