# Sourced by shell tests (after lib.sh): the fake Kubernetes API server
# (tests/k8s/fake_apiserver.py) with its own CA, server and client
# certificates, a bearer token and two kubeconfigs.
#
#   k8s_start [--nodes "gpu-1=8,gpu-2=4"] [--auto-run] [other server flags]
#       exports K8S_URL K8S_PORT K8S_TOKEN K8S_CA K8S_DIR K8S_PID
#       K8S_KUBECONFIG_TOKEN (bearer token, CA inline as certificate-authority-data)
#       K8S_KUBECONFIG_CERT  (client-certificate/client-key/certificate-authority files)
#       K8S_CLIENT_CERT K8S_CLIENT_KEY (CN nova, O system:masters)
#   k8s_stop
#   k8s_pod_status NS NAME PHASE [REASON] [MESSAGE]   the status switch
#   k8s_curl PATH [curl args]                         an authenticated request
#   k8s_kubectl_path                                  prints Debian's kubectl (see below)

K8S_PID=
K8S_DIR=
K8S_SERVER_PY="$(pwd)/tests/k8s/fake_apiserver.py"

# k8s_gen_certs DIR: a CA, a server certificate for 127.0.0.1/localhost and
# a client certificate, all EC P-256 (quick to make; libcurl, Go and Python
# all take them).
k8s_gen_certs() {
	d=$1
	mkdir -p "$d" || return 1
	(
	cd "$d" || exit 1
	set -e
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >client.ext
	openssl ecparam -name prime256v1 -genkey -noout -out ca.key
	openssl req -x509 -new -key ca.key -subj "/CN=nova-fake-kubernetes-ca" -days 3 \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out ca.crt
	for who in server client; do
		openssl ecparam -name prime256v1 -genkey -noout -out "$who.key"
		if [ "$who" = server ]; then subj="/CN=kube-apiserver"; else subj="/O=system:masters/CN=nova"; fi
		openssl req -new -key "$who.key" -subj "$subj" -out "$who.csr"
		openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
			-days 3 -extfile "$who.ext" -out "$who.crt"
	done
	chmod 0600 ./*.key
	) >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; return 1; }
}

k8s_start() {
	K8S_DIR="$T_WORK/k8s"
	k8s_gen_certs "$K8S_DIR" || return 1
	K8S_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	rm -f "$K8S_DIR/port"
	python3 "$K8S_SERVER_PY" --port-file "$K8S_DIR/port" \
		--cert "$K8S_DIR/server.crt" --key "$K8S_DIR/server.key" \
		--client-ca "$K8S_DIR/ca.crt" --token "$K8S_TOKEN" \
		--log "$K8S_DIR/requests.log" "$@" >>"$K8S_DIR/server.log" 2>&1 &
	K8S_PID=$!
	i=0
	while [ ! -s "$K8S_DIR/port" ]; do
		kill -0 "$K8S_PID" 2>/dev/null || { cat "$K8S_DIR/server.log" >&2; K8S_PID=; return 1; }
		i=$((i + 1)); [ $i -gt 100 ] && { echo "k8s_start: no port after 10 s" >&2; return 1; }
		sleep 0.1
	done
	K8S_PORT=$(cat "$K8S_DIR/port")
	K8S_URL="https://127.0.0.1:$K8S_PORT"
	K8S_CA="$K8S_DIR/ca.crt"
	K8S_CLIENT_CERT="$K8S_DIR/client.crt"
	K8S_CLIENT_KEY="$K8S_DIR/client.key"
	K8S_KUBECONFIG_TOKEN="$K8S_DIR/kubeconfig-token"
	K8S_KUBECONFIG_CERT="$K8S_DIR/kubeconfig-cert"
	cat >"$K8S_KUBECONFIG_TOKEN" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: $K8S_URL
    certificate-authority-data: $(base64 -w0 <"$K8S_CA")
users:
- name: nova-token
  user:
    token: $K8S_TOKEN
contexts:
- name: fake-token
  context:
    cluster: fake
    user: nova-token
    namespace: default
current-context: fake-token
preferences: {}
EOF
	cat >"$K8S_KUBECONFIG_CERT" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: $K8S_URL
    certificate-authority: $K8S_CA
users:
- name: nova-cert
  user:
    client-certificate: $K8S_CLIENT_CERT
    client-key: $K8S_CLIENT_KEY
contexts:
- name: fake-cert
  context:
    cluster: fake
    user: nova-cert
current-context: fake-cert
preferences: {}
EOF
	chmod 0600 "$K8S_KUBECONFIG_TOKEN" "$K8S_KUBECONFIG_CERT"
	i=0
	until curl -s -o /dev/null --cacert "$K8S_CA" "$K8S_URL/_fake/healthz"; do
		i=$((i + 1)); [ $i -gt 50 ] && { echo "k8s_start: not answering" >&2; return 1; }
		sleep 0.1
	done
	export K8S_URL K8S_PORT K8S_TOKEN K8S_CA K8S_DIR K8S_PID K8S_CLIENT_CERT K8S_CLIENT_KEY \
		K8S_KUBECONFIG_TOKEN K8S_KUBECONFIG_CERT
}

k8s_stop() {
	[ -n "$K8S_PID" ] || return 0
	kill -TERM "$K8S_PID" 2>/dev/null
	wait "$K8S_PID" 2>/dev/null
	K8S_PID=
}

# k8s_curl PATH [curl args]: PATH on the fake server with the bearer token.
k8s_curl() {
	k8s_path=$1; shift
	curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" "$@" "$K8S_URL$k8s_path"
}

# k8s_pod_status NS NAME PHASE [REASON] [MESSAGE]: drives a pod through
# Pending -> Running -> Failed (a REASON of ImagePullBackOff or ErrImagePull
# with PHASE Pending sets the container's waiting reason instead).
k8s_pod_status() {
	k8s_j() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
	body="{\"phase\":\"$(k8s_j "$3")\""
	case "${4:-}" in
	ImagePullBackOff|ErrImagePull|CrashLoopBackOff|ContainerCreating|CreateContainerConfigError)
		body="$body,\"containerWaitingReason\":\"$4\"" ;;
	"") ;;
	*) body="$body,\"reason\":\"$(k8s_j "$4")\"" ;;
	esac
	[ -n "${5:-}" ] && body="$body,\"message\":\"$(k8s_j "$5")\""
	k8s_curl "/_fake/pods/$1/$2/status" -f -o /dev/null -X POST \
		-H 'Content-Type: application/json' -d "$body}"
}

# k8s_kubectl_path: Debian's kubectl (package kubernetes-client). When it is
# not installed because another package owns /usr/bin/kubectl (Google's
# "kubectl" package on some machines), it is fetched and unpacked under the
# build directory (t_deb_tool). $K8S_KUBECTL overrides. Prints the path; 1
# with a message when there is none.
k8s_kubectl_path() {
	if [ -n "${K8S_KUBECTL:-}" ]; then
		[ -x "$K8S_KUBECTL" ] && { echo "$K8S_KUBECTL"; return 0; }
		echo "kubectl: K8S_KUBECTL=$K8S_KUBECTL is not an executable" >&2; return 1
	fi
	t_deb_tool kubernetes-client usr/bin/kubectl ||
		{ echo "kubectl: run tools/deps.sh as root or set K8S_KUBECTL" >&2; return 1; }
}
