# Sourced by bench/run.sh: the ceiling for HTTP paths, a private nginx on
# loopback. POST answers `return 204`; GET serves files from a document root
# (the benchmark puts there a copy of the body novad answers, so both move
# the same bytes). Its config, pid, logs and temp files live in one temp
# directory; nothing outside it is touched except the package install.
#
#   nginx_bench_ensure          install Debian's nginx-light when missing (root only)
#   nginx_bench_start DIR       start on a free loopback port; sets NGINX_BENCH_PORT,
#                               serves DIR/www
#   nginx_bench_stop            stop it
#   nginx_proxy_start DIR LISTEN UPSTREAM [LOCATION]
#                               a reverse proxy on LISTEN (HOST:PORT) to the
#                               upstream block's body UPSTREAM (servers,
#                               balancing, keepalive), HTTP/1.1 keep-alive
#                               to them, plus LOCATION's directives; config,
#                               pid and temp files in DIR; waits for its pid
#                               (NGINX_PROXY_PID). NGINX_PROXY_WORKERS (2)

nginx_bench_bin() {
	for b in "$(command -v nginx 2>/dev/null)" /usr/sbin/nginx; do
		[ -n "$b" ] && [ -x "$b" ] && { echo "$b"; return 0; }
	done
	return 1
}

nginx_bench_ensure() {
	nginx_bench_bin >/dev/null && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench: nginx is not installed and this is not root: skipping the nginx ceilings" \
			"(as root: apt-get install nginx-light)" >&2
		return 1
	fi
	echo "bench: installing nginx-light (the ceiling for HTTP paths)" >&2
	# The package starts Debian's own nginx on port 80 when it can; the
	# benchmark never uses that one (it runs its own, below), so it is left
	# as installed, as tools/deps.sh leaves the system PostgreSQL.
	log=$(mktemp)
	if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light \
		>"$log" 2>&1 ||
	   { apt-get update -qq >>"$log" 2>&1 &&
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light \
		>>"$log" 2>&1; }; then
		rm -f "$log"
	else
		echo "bench: installing nginx-light failed:" >&2
		tail -n 20 "$log" >&2
		rm -f "$log"
		return 1
	fi
	nginx_bench_bin >/dev/null
}

nginx_bench_start() {
	NGINX_BENCH_DIR=$1
	bin=$(nginx_bench_bin) || return 1
	mkdir -p "$NGINX_BENCH_DIR/www" "$NGINX_BENCH_DIR/tmp"
	chmod 0755 "$NGINX_BENCH_DIR" "$NGINX_BENCH_DIR/www"
	user_line=
	# As root the workers drop to nobody, who must read the document root.
	[ "$(id -u)" -eq 0 ] && user_line="user nobody nogroup;"
	tries=0
	while [ $tries -lt 20 ]; do
		tries=$((tries + 1))
		port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
		cat >"$NGINX_BENCH_DIR/nginx.conf" <<EOF
$user_line
worker_processes auto;
pid $NGINX_BENCH_DIR/nginx.pid;
error_log $NGINX_BENCH_DIR/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_buffer_size 64k;
    client_body_temp_path $NGINX_BENCH_DIR/tmp/body;
    proxy_temp_path $NGINX_BENCH_DIR/tmp/proxy;
    fastcgi_temp_path $NGINX_BENCH_DIR/tmp/fastcgi;
    uwsgi_temp_path $NGINX_BENCH_DIR/tmp/uwsgi;
    scgi_temp_path $NGINX_BENCH_DIR/tmp/scgi;
    default_type application/json;
    server {
        listen 127.0.0.1:$port;
        root $NGINX_BENCH_DIR/www;
        location / {
            if (\$request_method = POST) { return 204; }
        }
    }
}
EOF
		if "$bin" -p "$NGINX_BENCH_DIR" -e "$NGINX_BENCH_DIR/error.log" \
			-c "$NGINX_BENCH_DIR/nginx.conf" 2>>"$NGINX_BENCH_DIR/start.log"; then
			NGINX_BENCH_PORT=$port
			i=0
			while [ ! -s "$NGINX_BENCH_DIR/nginx.pid" ] && [ $i -lt 50 ]; do
				i=$((i + 1)); sleep 0.1
			done
			NGINX_BENCH_PID=$(cat "$NGINX_BENCH_DIR/nginx.pid" 2>/dev/null)
			export NGINX_BENCH_PORT NGINX_BENCH_PID
			return 0
		fi
		# Most likely the port was taken: try another.
	done
	echo "bench: nginx did not start:" >&2
	tail -n 5 "$NGINX_BENCH_DIR/start.log" "$NGINX_BENCH_DIR/error.log" >&2 2>/dev/null
	return 1
}

nginx_bench_stop() {
	[ -n "${NGINX_BENCH_PID:-}" ] || return 0
	kill -QUIT "$NGINX_BENCH_PID" 2>/dev/null
	i=0
	while kill -0 "$NGINX_BENCH_PID" 2>/dev/null && [ $i -lt 50 ]; do
		i=$((i + 1)); sleep 0.1
	done
	kill -KILL "$NGINX_BENCH_PID" 2>/dev/null
	NGINX_BENCH_PID=
}

nginx_proxy_start() {
	d=$1
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<EOF
$([ "$(id -u)" -eq 0 ] && echo "user nobody nogroup;")
worker_processes ${NGINX_PROXY_WORKERS:-2};
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream backends { $3 }
    server {
        listen $2;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            ${4:-}
        }
    }
}
EOF
	rm -f "$d/nginx.pid"
	"$(nginx_bench_bin)" -p "$d" -c "$d/nginx.conf" 2>"$d/start.err" || return 1
	i=0
	while [ ! -s "$d/nginx.pid" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
	NGINX_PROXY_PID=$(cat "$d/nginx.pid" 2>/dev/null)
	[ -n "$NGINX_PROXY_PID" ]
}
