/* libssh2 sessions with deadlines (contract in ssh_session.h).
 *
 * Every libssh2 call runs in non-blocking mode and is retried after a poll()
 * on the socket in the directions libssh2 says it is blocked on, until the
 * caller's deadline. libssh2's own blocking mode with
 * libssh2_session_set_timeout() was rejected: its timeout bounds each wait,
 * not the call, so a peer trickling bytes could hold a call forever. */
#include "adapters/ssh/ssh_session.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/files.h"
#include "core/log.h"
#include "core/secret.h"

#define SSH_DEFAULT_CONNECT_MS 10000u
#define SSH_DEFAULT_MAX_OUTPUT ((size_t)1 << 20)
#define SSH_GRACE_MS 1000
#define SSH_KEY_FILE_MAX (64 * 1024)
#define SSH_KNOWN_HOSTS_MAX (2 * FILES_READ_MAX)
/* Host key algorithms libssh2 1.10 can verify with signatures current sshd
 * still makes (no ssh-rsa: SHA-1). */
#define SSH_HOSTKEY_METHODS \
	"ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521"
#define SSH_RSA_REASON                                                                      \
	"libssh2 1.10 signs RSA keys only with SHA-1 (ssh-rsa), which OpenSSH 8.8 and later " \
	"refuse; use an ed25519 or ECDSA key"

/* A connection through a jump host: a direct-tcpip channel on a session
 * to the jump host, pumped by a thread of its own to one end of a socket
 * pair whose other end is the inner session's socket. So the inner session
 * polls and reads a plain socket like any other, and the jump session is
 * used by one thread only (the pump). Giving libssh2 send/recv callbacks
 * that write to the channel instead was rejected: the inner session would
 * have no descriptor to poll, and the two sessions would be driven from
 * one call stack. */
struct ssh_jump {
	struct ssh_session *js;
	LIBSSH2_CHANNEL *ch;
	int fd; /* the pump's end of the pair */
	pthread_t tid;
	bool running;
};

struct ssh_session {
	LIBSSH2_SESSION *sess;
	int fd;
	bool broken;
	char label[300]; /* "addr:port" */
	struct ssh_jump *jump;
};

static pthread_once_t ssh_once = PTHREAD_ONCE_INIT;
static int ssh_init_rc;

static void ssh_global_init(void)
{
	ssh_init_rc = libssh2_init(0);
}

static long long ssh_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until the socket is ready in the directions libssh2 blocked on.
 * -1 when the deadline has passed, else 0 (ready, or woken early: the caller
 * retries its call and comes back). */
static int ssh_wait(struct ssh_session *s, long long deadline)
{
	long long left = deadline - ssh_now_ms();
	struct pollfd p = {.fd = s->fd};
	int dir = libssh2_session_block_directions(s->sess);
	if (left <= 0)
		return -1;
	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		p.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p.events |= POLLOUT;
	if (!p.events) {
		/* EAGAIN with no direction (the agent's socket): don't spin. */
		p.events = POLLIN;
		if (left > 10)
			left = 10;
	}
	if (left > INT_MAX)
		left = INT_MAX;
	(void)poll(&p, 1, (int)left);
	return 0;
}

/* Retry a libssh2 call returning int until it stops saying EAGAIN or the
 * deadline passes (then rc is still LIBSSH2_ERROR_EAGAIN). */
#define SSH_RETRY(rc, s, deadline, call)                          \
	while (((rc) = (call)) == LIBSSH2_ERROR_EAGAIN) {         \
		if (ssh_wait((s), (deadline)))                    \
			break;                                    \
	}

/* A libssh2 failure as a Nova error: timeouts and lost connections are
 * transient (and leave the session unusable), the rest permanent. */
static int ssh_lib_err(struct ssh_session *s, int rc, const char *what, unsigned timeout_ms,
		       struct nova_err *err)
{
	char *msg = NULL;
	libssh2_session_last_error(s->sess, &msg, NULL, 0);
	switch (rc) {
	case LIBSSH2_ERROR_EAGAIN:
	case LIBSSH2_ERROR_TIMEOUT:
		s->broken = true;
		return nova_err_set(err, NOVA_EAGAIN, "", "host %s: %s timed out after %u ms",
				    s->label, what, timeout_ms);
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
	case LIBSSH2_ERROR_BANNER_RECV:
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
		s->broken = true;
		return nova_err_set(err, NOVA_EAGAIN, "", "host %s: %s: connection lost (%s)",
				    s->label, what, msg && *msg ? msg : "closed by the peer");
	case LIBSSH2_ERROR_ALLOC:
		s->broken = true;
		return nova_err_set(err, NOVA_EINTERNAL, "", "host %s: %s: out of memory", s->label,
				    what);
	default:
		return nova_err_set(err, NOVA_EFAILED, "", "host %s: %s failed: %s", s->label, what,
				    msg && *msg ? msg : "libssh2 error");
	}
}

/* --- connect ----------------------------------------------------------- */

/* A connected socket: sent data that stays unacknowledged for timeout_ms
 * (the connect timeout) fails the connection (TCP_USER_TIMEOUT). A pooled
 * session whose host vanished without a word (a cut link, a powered-off
 * machine) is found dead within that time of its next command, rather than
 * at the command's own timeout, which may be long for a slow command on a
 * live link. */
static void ssh_socket_ready(struct ssh_session *s, int fd, unsigned timeout_ms)
{
	unsigned ms = timeout_ms;
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
	s->fd = fd;
}

static int ssh_connect_tcp(struct ssh_session *s, const char *address, unsigned port,
			   long long deadline, unsigned timeout_ms, struct nova_err *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char portstr[12];
	int soerr = 0, g;
	snprintf(portstr, sizeof(portstr), "%u", port);
	if ((g = getaddrinfo(address, portstr, &hints, &res)) != 0)
		return nova_err_set(err, NOVA_EAGAIN, "", "host %s: cannot resolve %s: %s", s->label,
				    address, gai_strerror(g));
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			soerr = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			ssh_socket_ready(s, fd, timeout_ms);
			freeaddrinfo(res);
			return 0;
		}
		if (errno != EINPROGRESS) {
			soerr = errno;
			close(fd);
			continue;
		}
		for (;;) {
			long long left = deadline - ssh_now_ms();
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int n;
			if (left <= 0) {
				close(fd);
				freeaddrinfo(res);
				return nova_err_set(err, NOVA_EAGAIN, "",
						    "host %s: connect timed out after %u ms", s->label,
						    timeout_ms);
			}
			n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0)
				break;
		}
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr == 0) {
			ssh_socket_ready(s, fd, timeout_ms);
			freeaddrinfo(res);
			return 0;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return nova_err_set(err, NOVA_EAGAIN, "", "host %s: connect: %s", s->label,
			    strerror(soerr ? soerr : EHOSTUNREACH));
}

/* --- host keys --------------------------------------------------------- */

static int ssh_hostkey_kind(int hostkey_type, const char **name)
{
	switch (hostkey_type) {
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		*name = "ssh-ed25519";
		return LIBSSH2_KNOWNHOST_KEY_ED25519;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		*name = "ecdsa-sha2-nistp256";
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		*name = "ecdsa-sha2-nistp384";
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		*name = "ecdsa-sha2-nistp521";
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		*name = "ssh-rsa";
		return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	default:
		*name = "unknown";
		return 0;
	}
}

/* OpenSSH's fingerprint: "SHA256:" + unpadded base64 of the key's hash. */
static void ssh_fingerprint(char *out, size_t len, struct ssh_session *s)
{
	const char *h = libssh2_hostkey_hash(s->sess, LIBSSH2_HOSTKEY_HASH_SHA256);
	unsigned char b64[64];
	if (!h) {
		snprintf(out, len, "SHA256:?");
		return;
	}
	int n = EVP_EncodeBlock(b64, (const unsigned char *)h, 32);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, len, "SHA256:%.*s", n, (const char *)b64);
}

/* Look the key up in path: a LIBSSH2_KNOWNHOST_CHECK_* value, or -1 when
 * the file cannot be read (err set). A missing file knows no host. The
 * file is read by core/files' reader, within its deadline: a session may
 * be opened while an HTTP request waits (a deployment's discovery, a
 * forced pool delete), and a known_hosts on a file system that does not
 * answer must not hold it. */
static int ssh_known_lookup(struct ssh_session *s, const char *path, const char *host,
			    unsigned port, const char *key, size_t key_len, int kind,
			    struct nova_err *err)
{
	LIBSSH2_KNOWNHOSTS *kh;
	struct nova_err ferr = {0};
	char *text = NULL;
	size_t len = 0;
	int rc = files_read_capped(&text, &len, path, SSH_KNOWN_HOSTS_MAX, "known_hosts", &ferr);
	if (rc == NOVA_ENOTFOUND)
		return LIBSSH2_KNOWNHOST_CHECK_NOTFOUND;
	if (rc) {
		nova_err_set(err, rc == NOVA_EUNAVAIL ? NOVA_EAGAIN : NOVA_EFAILED, "",
			     "host %s: known_hosts: %s", s->label, ferr.message);
		return -1;
	}
	if (!(kh = libssh2_knownhost_init(s->sess))) {
		free(text);
		nova_err_set(err, NOVA_EINTERNAL, "", "host %s: out of memory", s->label);
		return -1;
	}
	/* Line by line: libssh2_knownhost_readfile() gives up on the first
	 * line it cannot parse, which would hide every entry after it. */
	for (char *line = text; line < text + len;) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		size_t n = nl ? (size_t)(nl - line) + 1 : (size_t)(text + len - line);
		if (n > 1)
			(void)libssh2_knownhost_readline(kh, line, n, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
		line += n;
	}
	free(text);
	rc = libssh2_knownhost_checkp(kh, host, (int)port, key, key_len,
				      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kind,
				      NULL);
	libssh2_knownhost_free(kh);
	return rc;
}

static int ssh_known_record(struct ssh_session *s, const struct ssh_target *t, const char *key,
			    size_t key_len, int kind, const char *type_name, const char *fp,
			    struct nova_err *err)
{
	int fd = open(t->known_hosts, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	unsigned char *b64 = NULL;
	char *line = NULL;
	struct stat st;
	int rc = 0;
	if (fd < 0)
		return nova_err_set(err, NOVA_EFAILED, "", "host %s: known_hosts %s: %s", s->label,
				    t->known_hosts, strerror(errno));
	/* Checked again under the lock: another session may have recorded a
	 * key (maybe a different one) since we looked. */
	if (flock(fd, LOCK_EX) < 0) {
		rc = nova_err_set(err, NOVA_EFAILED, "", "host %s: lock known_hosts %s: %s",
				  s->label, t->known_hosts, strerror(errno));
		goto out;
	}
	int found = ssh_known_lookup(s, t->known_hosts, t->address, t->port, key, key_len, kind, err);
	if (found < 0) {
		rc = err ? err->code : NOVA_EFAILED;
		goto out;
	}
	if (found == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		goto out;
	if (found == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		rc = nova_err_set(err, NOVA_EFAILED, "", "host %s: host key changed (%s %s)",
				  s->label, type_name, fp);
		goto out;
	}
	size_t b64_len = 4 * ((key_len + 2) / 3) + 1;
	size_t line_len = b64_len + strlen(t->address) + strlen(type_name) + 32;
	if (!(b64 = malloc(b64_len)) || !(line = malloc(line_len))) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "host %s: out of memory", s->label);
		goto out;
	}
	EVP_EncodeBlock(b64, (const unsigned char *)key, (int)key_len);
	bool need_nl = false;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		char last;
		need_nl = pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n';
	}
	int n = snprintf(line, line_len, "%s[%s]:%u %s %s\n", need_nl ? "\n" : "", t->address,
			 t->port, type_name, (const char *)b64);
	if (n < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0) {
		rc = nova_err_set(err, NOVA_EFAILED, "", "host %s: write known_hosts %s: %s",
				  s->label, t->known_hosts, strerror(errno));
		goto out;
	}
	nova_log(NOVA_LOG_INFO, "ssh", "host %s: recorded new host key %s %s in %s", s->label,
		 type_name, fp, t->known_hosts);
out:
	free(b64);
	free(line);
	close(fd); /* releases the lock */
	return rc;
}

static int ssh_check_host_key(struct ssh_session *s, const struct ssh_target *t,
			      struct nova_err *err)
{
	size_t key_len = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(s->sess, &key_len, &type);
	const char *type_name;
	char fp[64];
	if (!key)
		return nova_err_set(err, NOVA_EFAILED, "", "host %s: the server sent no host key",
				    s->label);
	int kind = ssh_hostkey_kind(type, &type_name);
	ssh_fingerprint(fp, sizeof(fp), s);
	if (!kind)
		return nova_err_set(err, NOVA_EFAILED, "", "host %s: unsupported host key type",
				    s->label);
	int found = ssh_known_lookup(s, t->known_hosts, t->address, t->port, key, key_len, kind, err);
	switch (found) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		return 0;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		nova_err_set(err, NOVA_EFAILED, "", "host %s: host key changed (%s %s)", s->label,
			     type_name, fp);
		nova_err_set_hint(err, "if the host was reinstalled, remove its old entry from %s",
				  t->known_hosts);
		return NOVA_EFAILED;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		if (t->policy == SSH_HOST_KEY_ACCEPT_NEW)
			return ssh_known_record(s, t, key, key_len, kind, type_name, fp, err);
		nova_err_set(err, NOVA_EFAILED, "", "host %s: host key is unknown (%s %s)", s->label,
			     type_name, fp);
		nova_err_set_hint(err,
				  "add the host's key to %s as [%s]:%u, or set host_key_policy to accept-new",
				  t->known_hosts, t->address, t->port);
		return NOVA_EFAILED;
	case -1:
		return err ? err->code : NOVA_EFAILED;
	default:
		return nova_err_set(err, NOVA_EFAILED, "", "host %s: cannot check the host key",
				    s->label);
	}
}

/* --- client keys ------------------------------------------------------- */

static uint32_t ssh_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An SSH wire string at *p (length-prefixed); false when it overruns. */
static bool ssh_wire_string(const unsigned char **p, const unsigned char *end,
			    const unsigned char **str, size_t *len)
{
	if (end - *p < 4)
		return false;
	uint32_t n = ssh_be32(*p);
	if ((size_t)(end - *p - 4) < n)
		return false;
	*str = *p + 4;
	*len = n;
	*p += 4 + n;
	return true;
}

/* The key type of an OpenSSH-format private key ("openssh-key-v1"), read
 * from its public half, which is stored unencrypted. */
static int ssh_openssh_key_type(char *type, size_t type_len, bool *encrypted,
				const char *pem, const char *path, struct nova_err *err)
{
	static const char magic[] = "openssh-key-v1"; /* and its NUL */
	const char *b = strstr(pem, "-----BEGIN OPENSSH PRIVATE KEY-----");
	const char *e = strstr(pem, "-----END OPENSSH PRIVATE KEY-----");
	unsigned char *txt = NULL, *bin = NULL;
	size_t n = 0;
	int rc = 0;
	b += strlen("-----BEGIN OPENSSH PRIVATE KEY-----");
	if (!e || e < b)
		return nova_err_set(err, NOVA_EINVAL, "key", "private key %s is truncated", path);
	txt = malloc((size_t)(e - b) + 1);
	bin = malloc((size_t)(e - b) + 1);
	if (!txt || !bin) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		goto out;
	}
	for (const char *c = b; c < e; c++)
		if (*c != '\n' && *c != '\r' && *c != ' ' && *c != '\t')
			txt[n++] = (unsigned char)*c;
	int m = n % 4 == 0 ? EVP_DecodeBlock(bin, txt, (int)n) : -1;
	if (m < 0) {
		rc = nova_err_set(err, NOVA_EINVAL, "key", "private key %s is not valid base64", path);
		goto out;
	}
	for (size_t i = n; i > 0 && txt[i - 1] == '='; i--)
		m--; /* EVP_DecodeBlock counts padding as zero bytes */
	const unsigned char *p = bin, *end = bin + m, *cipher, *kdf, *kdfopt, *pub, *kt;
	size_t cipher_len, kdf_len, kdfopt_len, pub_len, kt_len;
	if (m < (int)sizeof(magic) || memcmp(p, magic, sizeof(magic)) != 0) {
		rc = nova_err_set(err, NOVA_EINVAL, "key", "private key %s is not an openssh key", path);
		goto out;
	}
	p += sizeof(magic);
	if (!ssh_wire_string(&p, end, &cipher, &cipher_len) ||
	    !ssh_wire_string(&p, end, &kdf, &kdf_len) ||
	    !ssh_wire_string(&p, end, &kdfopt, &kdfopt_len) || end - p < 4 || ssh_be32(p) < 1 ||
	    (p += 4, !ssh_wire_string(&p, end, &pub, &pub_len))) {
		rc = nova_err_set(err, NOVA_EINVAL, "key", "private key %s is malformed", path);
		goto out;
	}
	p = pub;
	if (!ssh_wire_string(&p, pub + pub_len, &kt, &kt_len) || kt_len >= type_len) {
		rc = nova_err_set(err, NOVA_EINVAL, "key", "private key %s is malformed", path);
		goto out;
	}
	memcpy(type, kt, kt_len);
	type[kt_len] = '\0';
	*encrypted = !(cipher_len == 4 && memcmp(cipher, "none", 4) == 0);
out:
	if (bin)
		OPENSSL_cleanse(bin, (size_t)(e - b) + 1);
	if (txt)
		OPENSSL_cleanse(txt, (size_t)(e - b) + 1);
	free(bin);
	free(txt);
	return rc;
}

/* The key type of a private key file: an OpenSSH key's own type name,
 * "ssh-rsa"/"ecdsa"/"ssh-dss" for PEM keys, "" when the format does not say
 * (PKCS#8: libssh2 is left to judge). */
static int ssh_key_file_type(char *type, size_t type_len, bool *encrypted, const char *buf,
			     const char *path, struct nova_err *err)
{
	int rc = 0;
	type[0] = '\0';
	*encrypted = false;
	if (strstr(buf, "-----BEGIN OPENSSH PRIVATE KEY-----"))
		rc = ssh_openssh_key_type(type, type_len, encrypted, buf, path, err);
	else if (strstr(buf, "-----BEGIN RSA PRIVATE KEY-----"))
		snprintf(type, type_len, "ssh-rsa");
	else if (strstr(buf, "-----BEGIN EC PRIVATE KEY-----"))
		snprintf(type, type_len, "ecdsa");
	else if (strstr(buf, "-----BEGIN DSA PRIVATE KEY-----"))
		snprintf(type, type_len, "ssh-dss");
	else if (!strstr(buf, "PRIVATE KEY-----"))
		rc = nova_err_set(err, NOVA_EINVAL, "key", "%s is not a private key file", path);
	if (rc == 0 && strstr(buf, "Proc-Type: 4,ENCRYPTED"))
		*encrypted = true;
	return rc;
}

static void ssh_key_text_free(char *text, size_t len)
{
	if (text) {
		OPENSSL_cleanse(text, len);
		free(text);
	}
}

/* The key file's content into *text (len bytes; ssh_key_text_free), read
 * by core/files' reader within its deadline (not following a final
 * symlink, a regular file only: the config check resolved the path, and
 * what is there now is read as it is), then judged. code for an RSA or DSA
 * key: EFAILED at connect time (the session's contract), EINVAL when
 * checking a config. */
static int ssh_key_usable(char **text, size_t *len, const char *label, const char *path, int code,
			  struct nova_err *err)
{
	char type[64], prefix[320] = "";
	bool encrypted;
	int rc;
	*text = NULL;
	*len = 0;
	if ((rc = files_read_capped(text, len, path, SSH_KEY_FILE_MAX, "key", err))) {
		if (rc == NOVA_ENOTFOUND)
			return nova_err_set(err, NOVA_EINVAL, "key", "private key %s: %s", path,
					    strerror(ENOENT));
		/* Did not answer in time: a config check says 503; a
		 * connection is worth retrying (the session's contract). */
		if (rc == NOVA_EUNAVAIL && label && err)
			rc = err->code = NOVA_EAGAIN;
		return rc;
	}
	if ((rc = ssh_key_file_type(type, sizeof(type), &encrypted, *text, path, err)))
		goto fail;
	if (label)
		snprintf(prefix, sizeof(prefix), "host %s: ", label);
	if (strcmp(type, "ssh-rsa") == 0) {
		nova_err_set(err, code, "key", "%sprivate key %s is RSA: %s", prefix, path,
			     SSH_RSA_REASON);
		nova_err_set_hint(err, "ssh-keygen -t ed25519 makes one");
		rc = code;
		goto fail;
	}
	if (strcmp(type, "ssh-dss") == 0) {
		rc = nova_err_set(err, code, "key",
				  "%sprivate key %s is DSA, which OpenSSH refuses; use an ed25519 or ECDSA key",
				  prefix, path);
		goto fail;
	}
	if (encrypted) {
		nova_err_set(err, NOVA_EINVAL, "key",
			     "private key %s is encrypted, and no passphrase can be configured", path);
		nova_err_set_hint(err, "load it into ssh-agent and leave the key unset");
		rc = NOVA_EINVAL;
		goto fail;
	}
	return 0;
fail:
	ssh_key_text_free(*text, *len);
	*text = NULL;
	*len = 0;
	return rc;
}

int ssh_key_check(const char *path, struct nova_err *err)
{
	char *text;
	size_t len;
	int rc = ssh_key_usable(&text, &len, NULL, path, NOVA_EINVAL, err);
	ssh_key_text_free(text, len);
	return rc;
}

/* Authenticated with the key's content as read (and judged) above, not
 * by libssh2 opening the path again: that open would be outside the
 * reader's deadline, on whatever thread opens the session. */
static int ssh_auth_file(struct ssh_session *s, const struct ssh_target *t, long long deadline,
			 unsigned timeout_ms, struct nova_err *err)
{
	char *text;
	size_t len;
	int rc = ssh_key_usable(&text, &len, s->label, t->key_path, NOVA_EFAILED, err);
	if (rc)
		return rc;
	SSH_RETRY(rc, s, deadline,
		  libssh2_userauth_publickey_frommemory(s->sess, t->user, strlen(t->user), NULL, 0,
							text, len, NULL));
	ssh_key_text_free(text, len);
	if (rc == 0)
		return 0;
	if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED)
		return nova_err_set(err, NOVA_EFAILED, "", "host %s: authentication failed for user %s",
				    s->label, t->user);
	if (rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_PUBLICKEY_UNRECOGNIZED ||
	    rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED)
		return nova_err_set(err, NOVA_EINVAL, "key", "host %s: private key %s cannot be used",
				    s->label, t->key_path);
	return ssh_lib_err(s, rc, "authentication", timeout_ms, err);
}

static bool ssh_agent_key_is_rsa(const struct libssh2_agent_publickey *id)
{
	return id->blob_len >= 11 && ssh_be32(id->blob) == 7 && memcmp(id->blob + 4, "ssh-rsa", 7) == 0;
}

static int ssh_auth_agent(struct ssh_session *s, const struct ssh_target *t, long long deadline,
			  unsigned timeout_ms, struct nova_err *err)
{
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	LIBSSH2_AGENT *agent;
	unsigned offered = 0, rsa = 0;
	int rc;
	if (!getenv("SSH_AUTH_SOCK"))
		return nova_err_set(err, NOVA_EINVAL, "key",
				    "host %s: no private key is configured and SSH_AUTH_SOCK is not set",
				    s->label);
	if (!(agent = libssh2_agent_init(s->sess)))
		return nova_err_set(err, NOVA_EINTERNAL, "", "host %s: out of memory", s->label);
	SSH_RETRY(rc, s, deadline, libssh2_agent_connect(agent));
	if (rc) {
		rc = nova_err_set(err, NOVA_EFAILED, "", "host %s: cannot reach ssh-agent", s->label);
		goto out;
	}
	SSH_RETRY(rc, s, deadline, libssh2_agent_list_identities(agent));
	if (rc) {
		rc = nova_err_set(err, NOVA_EFAILED, "", "host %s: ssh-agent lists no keys", s->label);
		goto out;
	}
	rc = NOVA_EFAILED;
	while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
		int arc;
		prev = id;
		if (ssh_agent_key_is_rsa(id)) {
			rsa++;
			continue;
		}
		offered++;
		SSH_RETRY(arc, s, deadline, libssh2_agent_userauth(agent, t->user, id));
		if (arc == 0) {
			rc = 0;
			goto out;
		}
		if (arc != LIBSSH2_ERROR_AUTHENTICATION_FAILED &&
		    arc != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
			rc = ssh_lib_err(s, arc, "authentication with ssh-agent", timeout_ms, err);
			goto out;
		}
	}
	if (offered == 0 && rsa > 0)
		nova_err_set(err, NOVA_EFAILED, "key", "host %s: ssh-agent holds only RSA keys: %s",
			     s->label, SSH_RSA_REASON);
	else
		nova_err_set(err, NOVA_EFAILED, "",
			     "host %s: authentication failed for user %s (ssh-agent offered %u keys)",
			     s->label, t->user, offered);
out:
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return rc;
}

/* --- jump hosts ------------------------------------------------------- */

#define SSH_PUMP_BUF 32768

/* Bytes between the pair's end and the channel, both ways, until either
 * side ends; then the pair's end is shut so the inner session sees EOF. */
static void *ssh_jump_pump(void *arg)
{
	struct ssh_jump *j = arg;
	char *up = malloc(SSH_PUMP_BUF), *down = malloc(SSH_PUMP_BUF);
	size_t up_len = 0, up_off = 0, down_len = 0, down_off = 0;
	bool pair_eof = false;
	while (up && down) {
		bool progress = false;
		if (down_len == 0) {
			ssize_t n = libssh2_channel_read(j->ch, down, SSH_PUMP_BUF);
			if (n > 0) {
				down_len = (size_t)n;
				down_off = 0;
				progress = true;
			} else if ((n == 0 && libssh2_channel_eof(j->ch)) ||
				   (n < 0 && n != LIBSSH2_ERROR_EAGAIN)) {
				break; /* the target or the jump host closed */
			}
		}
		if (down_off < down_len) {
			ssize_t w = send(j->fd, down + down_off, down_len - down_off,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0) {
				down_off += (size_t)w;
				progress = true;
				if (down_off == down_len)
					down_len = down_off = 0;
			} else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				break;
			}
		}
		if (up_len == 0 && !pair_eof) {
			ssize_t r = recv(j->fd, up, SSH_PUMP_BUF, MSG_DONTWAIT);
			if (r > 0) {
				up_len = (size_t)r;
				up_off = 0;
				progress = true;
			} else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
				pair_eof = true;
			}
		}
		if (up_off < up_len) {
			ssize_t w = libssh2_channel_write(j->ch, up + up_off, up_len - up_off);
			if (w > 0) {
				up_off += (size_t)w;
				progress = true;
				if (up_off == up_len)
					up_len = up_off = 0;
			} else if (w < 0 && w != LIBSSH2_ERROR_EAGAIN) {
				break;
			}
		}
		if (pair_eof && up_len == 0)
			break; /* the inner session closed */
		if (progress)
			continue;
		struct pollfd p[2] = {{.fd = j->fd}, {.fd = j->js->fd, .events = POLLIN}};
		if (up_len == 0)
			p[0].events |= POLLIN;
		if (down_len)
			p[0].events |= POLLOUT;
		if (libssh2_session_block_directions(j->js->sess) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
			p[1].events |= POLLOUT;
		/* Bounded: libssh2 may hold channel data it already read. */
		(void)poll(p, 2, 100);
	}
	free(up);
	free(down);
	shutdown(j->fd, SHUT_RDWR);
	return NULL;
}

static void ssh_jump_close(struct ssh_jump *j)
{
	if (!j)
		return;
	if (j->running) {
		shutdown(j->fd, SHUT_RDWR); /* the pump sees the end at once */
		pthread_join(j->tid, NULL);
	}
	if (j->ch) {
		long long grace = ssh_now_ms() + SSH_GRACE_MS;
		int rc;
		SSH_RETRY(rc, j->js, grace, libssh2_channel_free(j->ch));
		if (rc)
			j->js->broken = true;
	}
	if (j->fd >= 0)
		close(j->fd);
	ssh_session_close(j->js);
	free(j);
}

/* s->fd: a socket that reaches t through t->jump. */
static int ssh_connect_jump(struct ssh_session *s, const struct ssh_target *t, long long deadline,
			    struct nova_err *err)
{
	struct ssh_target jt = *t->jump;
	struct ssh_jump *j = calloc(1, sizeof(*j));
	int sv[2] = {-1, -1}, rc;
	if (!j)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	j->fd = -1;
	jt.known_hosts = t->known_hosts;
	jt.policy = t->policy;
	jt.jump = NULL; /* one hop */
	long long left = deadline - ssh_now_ms();
	jt.connect_timeout_ms = left < 1 ? 1 : (unsigned)left;
	if ((rc = ssh_session_open(&j->js, &jt, err))) {
		free(j);
		return rc; /* its message names the jump host */
	}
	while (!(j->ch = libssh2_channel_direct_tcpip_ex(j->js->sess, t->address, (int)t->port,
							 "127.0.0.1", 22))) {
		char *msg = NULL;
		rc = libssh2_session_last_error(j->js->sess, &msg, NULL, 0);
		if (rc == LIBSSH2_ERROR_EAGAIN && !ssh_wait(j->js, deadline))
			continue;
		if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE)
			rc = nova_err_set(err, NOVA_EAGAIN, "",
					  "host %s: jump host %s cannot connect to it (%s)", s->label,
					  j->js->label, msg && *msg ? msg : "refused");
		else
			rc = ssh_lib_err(j->js, rc, "opening a tunnel", t->connect_timeout_ms, err);
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "socketpair: %s", strerror(errno));
		goto fail;
	}
	j->fd = sv[1];
	if (pthread_create(&j->tid, NULL, ssh_jump_pump, j) != 0) {
		close(sv[0]);
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "cannot start a thread for the jump host");
		goto fail;
	}
	j->running = true;
	s->fd = sv[0];
	s->jump = j;
	return 0;
fail:
	ssh_jump_close(j);
	return rc;
}

/* --- sessions ---------------------------------------------------------- */

int ssh_session_open(struct ssh_session **out, const struct ssh_target *t_in,
		     struct nova_err *err)
{
	struct ssh_target t = *t_in;
	struct ssh_session *s;
	int rc;
	*out = NULL;
	pthread_once(&ssh_once, ssh_global_init);
	if (ssh_init_rc != 0)
		return nova_err_set(err, NOVA_EINTERNAL, "", "libssh2_init failed");
	if (!t.port)
		t.port = 22;
	if (!t.connect_timeout_ms)
		t.connect_timeout_ms = SSH_DEFAULT_CONNECT_MS;
	if (!t.address || !*t.address || !t.user || !*t.user || !t.known_hosts)
		return nova_err_set(err, NOVA_EINVAL, "", "an ssh target needs address, user and known_hosts");
	if (t.port > 65535)
		return nova_err_set(err, NOVA_EINVAL, "port", "port %u is not in 1..65535", t.port);
	long long deadline = ssh_now_ms() + t.connect_timeout_ms;
	if (!(s = calloc(1, sizeof(*s))))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	s->fd = -1;
	snprintf(s->label, sizeof(s->label), "%.255s:%u", t.address, t.port);
	if ((rc = t.jump ? ssh_connect_jump(s, &t, deadline, err)
			 : ssh_connect_tcp(s, t.address, t.port, deadline, t.connect_timeout_ms, err)))
		goto fail;
	if (!(s->sess = libssh2_session_init_ex(NULL, NULL, NULL, s))) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "host %s: out of memory", s->label);
		goto fail;
	}
	libssh2_session_set_blocking(s->sess, 0);
	if (libssh2_session_method_pref(s->sess, LIBSSH2_METHOD_HOSTKEY, SSH_HOSTKEY_METHODS)) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "libssh2 supports none of %s",
				  SSH_HOSTKEY_METHODS);
		goto fail;
	}
	SSH_RETRY(rc, s, deadline, libssh2_session_handshake(s->sess, s->fd));
	if (rc == LIBSSH2_ERROR_KEX_FAILURE) {
		rc = nova_err_set(err, NOVA_EFAILED, "",
				  "host %s: no common key exchange or host key algorithm (this client verifies %s)",
				  s->label, SSH_HOSTKEY_METHODS);
		goto fail;
	}
	if (rc) {
		rc = ssh_lib_err(s, rc, "ssh handshake", t.connect_timeout_ms, err);
		goto fail;
	}
	if ((rc = ssh_check_host_key(s, &t, err)))
		goto fail;
	rc = t.key_path ? ssh_auth_file(s, &t, deadline, t.connect_timeout_ms, err)
			: ssh_auth_agent(s, &t, deadline, t.connect_timeout_ms, err);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	s->broken = true; /* no polite goodbye: the peer may be anyone */
	ssh_session_close(s);
	return rc;
}

void ssh_session_close(struct ssh_session *s)
{
	if (!s)
		return;
	if (s->sess) {
		long long deadline = ssh_now_ms() + SSH_GRACE_MS;
		int rc;
		/* A broken session may be mid-packet: no goodbye, and with the
		 * socket shut libssh2's sends fail at once instead of waiting. */
		if (s->broken && s->fd >= 0)
			shutdown(s->fd, SHUT_RDWR);
		if (!s->broken)
			SSH_RETRY(rc, s, deadline,
				  libssh2_session_disconnect(s->sess, "nova: session closed"));
		SSH_RETRY(rc, s, deadline, libssh2_session_free(s->sess));
		if (rc == LIBSSH2_ERROR_EAGAIN) {
			/* A peer that stopped reading: with the socket shut, libssh2's
			 * sends fail instead of waiting, and it frees what is left. */
			shutdown(s->fd, SHUT_RDWR);
			for (int i = 0; i < 100 && rc == LIBSSH2_ERROR_EAGAIN; i++)
				rc = libssh2_session_free(s->sess);
		}
	}
	if (s->fd >= 0)
		close(s->fd);
	ssh_jump_close(s->jump);
	free(s);
}

bool ssh_session_usable(const struct ssh_session *s)
{
	return s && s->sess && !s->broken;
}

bool ssh_session_alive(struct ssh_session *s)
{
	struct pollfd p = {.events = POLLIN};
	char c;
	if (!ssh_session_usable(s))
		return false;
	p.fd = s->fd;
	/* Readable with nothing to read is an end of stream (the peer closed,
	 * or its process died); readable with data is the peer talking
	 * (keepalives), which libssh2 reads with the next call. */
	if (poll(&p, 1, 0) > 0) {
		ssize_t n = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ||
		    (p.revents & (POLLERR | POLLHUP | POLLNVAL)))
			s->broken = true;
	}
	return !s->broken;
}

const char *ssh_session_label(const struct ssh_session *s)
{
	return s->label;
}

static int ssh_unusable(const struct ssh_session *s, struct nova_err *err)
{
	return nova_err_set(err, NOVA_EAGAIN, "",
			    "host %s: the session was left unusable by an earlier failure", s->label);
}

/* --- exec -------------------------------------------------------------- */

struct ssh_buf {
	char *data;
	size_t len, cap, max;
	bool dropped;
};

static int ssh_buf_append(struct ssh_buf *b, const char *p, size_t n)
{
	if (b->len + n > b->max) {
		b->dropped = true;
		n = b->max - b->len;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* Hand the buffers to res; an empty stream is "" (NULL only when even that
 * allocation failed, and then the call fails). */
static int ssh_result_take(struct ssh_exec_result *res, struct ssh_buf *o, struct ssh_buf *e)
{
	res->out = o->data ? o->data : calloc(1, 1);
	res->out_len = o->len;
	res->err = e->data ? e->data : calloc(1, 1);
	res->err_len = e->len;
	res->truncated = o->dropped || e->dropped;
	*o = (struct ssh_buf){0};
	*e = (struct ssh_buf){0};
	return res->out && res->err ? 0 : -1;
}

void ssh_exec_result_finish(struct ssh_exec_result *res)
{
	if (!res)
		return;
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
	res->out_len = res->err_len = 0;
}

int ssh_session_exec(struct ssh_exec_result *res, struct ssh_session *s, const char *command,
		     unsigned timeout_ms, size_t max_output, struct nova_err *err)
{
	size_t max = max_output ? max_output : SSH_DEFAULT_MAX_OUTPUT;
	struct ssh_buf o = {.max = max}, e = {.max = max};
	LIBSSH2_CHANNEL *ch = NULL;
	char buf[16384];
	int rc;
	assert(s && res && command);
	memset(res, 0, sizeof(*res));
	res->exit_status = -1;
	if (!ssh_session_usable(s)) {
		rc = ssh_unusable(s, err);
		goto out;
	}
	long long deadline = ssh_now_ms() + timeout_ms;
	while (!(ch = libssh2_channel_open_session(s->sess))) {
		rc = libssh2_session_last_errno(s->sess);
		if (rc != LIBSSH2_ERROR_EAGAIN || ssh_wait(s, deadline)) {
			rc = ssh_lib_err(s, rc, "opening a channel", timeout_ms, err);
			goto out;
		}
	}
	SSH_RETRY(rc, s, deadline, libssh2_channel_exec(ch, command));
	if (rc) {
		rc = ssh_lib_err(s, rc, "starting a command", timeout_ms, err);
		goto out;
	}
	/* Both streams in one loop: a command that fills its stderr window
	 * while we wait on stdout would otherwise never finish. */
	for (;;) {
		ssize_t n1 = libssh2_channel_read(ch, buf, sizeof(buf));
		if (n1 > 0 && ssh_buf_append(&o, buf, (size_t)n1)) {
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "host %s: out of memory", s->label);
			goto out;
		}
		ssize_t n2 = libssh2_channel_read_stderr(ch, buf, sizeof(buf));
		if (n2 > 0 && ssh_buf_append(&e, buf, (size_t)n2)) {
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "host %s: out of memory", s->label);
			goto out;
		}
		if ((n1 < 0 && n1 != LIBSSH2_ERROR_EAGAIN) || (n2 < 0 && n2 != LIBSSH2_ERROR_EAGAIN)) {
			rc = ssh_lib_err(s, (int)(n1 < 0 && n1 != LIBSSH2_ERROR_EAGAIN ? n1 : n2),
					 "reading a command's output", timeout_ms, err);
			goto out;
		}
		if (n1 > 0 || n2 > 0)
			continue;
		if (libssh2_channel_eof(ch) || (n1 == 0 && n2 == 0))
			break;
		if (ssh_wait(s, deadline)) {
			rc = ssh_lib_err(s, LIBSSH2_ERROR_EAGAIN, "command", timeout_ms, err);
			goto out;
		}
	}
	/* The exit status and signal arrive before the close; only after
	 * wait_closed are they known to have been read. */
	SSH_RETRY(rc, s, deadline, libssh2_channel_close(ch));
	if (rc == 0)
		SSH_RETRY(rc, s, deadline, libssh2_channel_wait_closed(ch));
	if (rc) {
		rc = ssh_lib_err(s, rc, "command", timeout_ms, err);
		goto out;
	}
	char *sig = NULL;
	size_t sig_len = 0;
	libssh2_channel_get_exit_signal(ch, &sig, &sig_len, NULL, NULL, NULL, NULL);
	if (sig) {
		snprintf(res->exit_signal, sizeof(res->exit_signal), "%.*s", (int)sig_len, sig);
		libssh2_free(s->sess, sig);
		rc = nova_err_set(err, NOVA_EFAILED, "", "host %s: command killed by signal %s",
				  s->label, res->exit_signal);
	} else {
		res->exit_status = libssh2_channel_get_exit_status(ch);
	}
out:
	if (ch && !s->broken) {
		long long grace = ssh_now_ms() + SSH_GRACE_MS;
		int frc;
		SSH_RETRY(frc, s, grace, libssh2_channel_free(ch));
		if (frc)
			s->broken = true; /* session_free frees it */
	}
	if (ssh_result_take(res, &o, &e) && rc == 0)
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "host %s: out of memory", s->label);
	return rc;
}

/* --- upload ------------------------------------------------------------ */

static const char *ssh_fx_name(unsigned long fx)
{
	switch (fx) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return "no such file or directory";
	case LIBSSH2_FX_PERMISSION_DENIED:
		return "permission denied";
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return "file exists";
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
		return "no space left on device";
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return "quota exceeded";
	case LIBSSH2_FX_FAILURE:
		/* OpenSSH's sftp-server (protocol 3) says this for ENOSPC too. */
		return "failure (a full disk, among others)";
	default:
		return "sftp error";
	}
}

static int ssh_sftp_err(struct ssh_session *s, LIBSSH2_SFTP *sftp, int rc, const char *what,
			const char *path, unsigned timeout_ms, struct nova_err *err)
{
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL && sftp)
		return nova_err_set(err, NOVA_EFAILED, "", "host %s: %s %s: %s", s->label, what, path,
				    ssh_fx_name(libssh2_sftp_last_error(sftp)));
	char full[PATH_MAX + 64];
	snprintf(full, sizeof(full), "%s %.*s", what, PATH_MAX, path);
	return ssh_lib_err(s, rc, full, timeout_ms, err);
}

static unsigned ssh_left_ms(long long deadline)
{
	long long left = deadline - ssh_now_ms();
	return left < 1 ? 1 : left > UINT_MAX ? UINT_MAX : (unsigned)left;
}

/* Run a command that must exit 0; its stderr's first line is the error. */
static int ssh_run_ok(struct ssh_session *s, const char *cmd, const char *what,
		      long long deadline, struct ssh_exec_result *res, struct nova_err *err)
{
	int rc = ssh_session_exec(res, s, cmd, ssh_left_ms(deadline), 64 * 1024, err);
	if (rc == 0 && res->exit_status != 0)
		rc = nova_err_set(err, NOVA_EFAILED, "", "host %s: %s: %.*s", s->label, what,
				  (int)strcspn(res->err, "\n"), res->err);
	return rc;
}

int ssh_session_upload(struct ssh_session *s, const char *remote_path, const void *data,
		       size_t len, unsigned mode, unsigned timeout_ms, struct nova_err *err)
{
	LIBSSH2_SFTP *sftp = NULL;
	LIBSSH2_SFTP_HANDLE *h = NULL;
	struct ssh_exec_result res = {0};
	char tmp[PATH_MAX], qtmp[PATH_MAX * 4 + 3], qdst[PATH_MAX * 4 + 3];
	char cmd[sizeof(qtmp) + sizeof(qdst) + 32], want[SECRET_HEX_SHA256_LEN];
	unsigned char rnd[6];
	bool created = false;
	int rc;
	assert(s && remote_path && (data || len == 0));
	if (!ssh_session_usable(s))
		return ssh_unusable(s, err);
	long long deadline = ssh_now_ms() + timeout_ms;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return nova_err_set(err, NOVA_EINTERNAL, "", "getrandom: %s", strerror(errno));
	if (snprintf(tmp, sizeof(tmp), "%s.nova-tmp-%02x%02x%02x%02x%02x%02x", remote_path, rnd[0],
		     rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]) >= (int)sizeof(tmp))
		return nova_err_set(err, NOVA_EINVAL, "", "remote path %s is too long", remote_path);
	if ((rc = ssh_shell_quote(qtmp, sizeof(qtmp), tmp, err)) ||
	    (rc = ssh_shell_quote(qdst, sizeof(qdst), remote_path, err)))
		return rc;
	secret_sha256_hex(want, data, len);
	while (!(sftp = libssh2_sftp_init(s->sess))) {
		rc = libssh2_session_last_errno(s->sess);
		if (rc != LIBSSH2_ERROR_EAGAIN || ssh_wait(s, deadline)) {
			rc = ssh_lib_err(s, rc, "starting sftp", timeout_ms, err);
			goto out;
		}
	}
	while (!(h = libssh2_sftp_open_ex(sftp, tmp, (unsigned)strlen(tmp),
					  LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
					  (long)mode, LIBSSH2_SFTP_OPENFILE))) {
		rc = libssh2_session_last_errno(s->sess);
		if (rc != LIBSSH2_ERROR_EAGAIN || ssh_wait(s, deadline)) {
			rc = ssh_sftp_err(s, sftp, rc, "create", tmp, timeout_ms, err);
			goto out;
		}
	}
	created = true;
	for (size_t off = 0; off < len;) {
		ssize_t n = libssh2_sftp_write(h, (const char *)data + off, len - off);
		if (n == LIBSSH2_ERROR_EAGAIN) {
			if (ssh_wait(s, deadline)) {
				rc = ssh_sftp_err(s, sftp, (int)n, "upload of", remote_path, timeout_ms, err);
				goto out;
			}
			continue;
		}
		if (n < 0) {
			rc = ssh_sftp_err(s, sftp, (int)n, "write", tmp, timeout_ms, err);
			goto out;
		}
		off += (size_t)n;
	}
	SSH_RETRY(rc, s, deadline, libssh2_sftp_fsync(h));
	if (rc) {
		rc = ssh_sftp_err(s, sftp, rc, "fsync", tmp, timeout_ms, err);
		goto out;
	}
	SSH_RETRY(rc, s, deadline, libssh2_sftp_close_handle(h));
	if (rc != LIBSSH2_ERROR_EAGAIN)
		h = NULL; /* freed by libssh2 whatever the answer, but "again" */
	if (rc) {
		rc = ssh_sftp_err(s, sftp, rc, "close", tmp, timeout_ms, err);
		goto out;
	}
	SSH_RETRY(rc, s, deadline, libssh2_sftp_shutdown(sftp));
	if (rc != LIBSSH2_ERROR_EAGAIN)
		sftp = NULL;
	if (rc) {
		rc = ssh_lib_err(s, rc, "closing sftp", timeout_ms, err);
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "sha256sum -- %s", qtmp);
	if ((rc = ssh_run_ok(s, cmd, "checksum of the upload", deadline, &res, err)))
		goto out;
	if (res.out_len < 64 || memcmp(res.out, want, 64) != 0) {
		rc = nova_err_set(err, NOVA_EFAILED, "",
				  "host %s: %s has another sha256 than what was sent", s->label, tmp);
		goto out;
	}
	ssh_exec_result_finish(&res);
	snprintf(cmd, sizeof(cmd), "mv -f -- %s %s", qtmp, qdst);
	if ((rc = ssh_run_ok(s, cmd, "rename of the upload", deadline, &res, err)))
		goto out;
	created = false;
out:
	ssh_exec_result_finish(&res);
	/* The SFTP handle and channel are libssh2 objects of their own, which
	 * session_free does not reclaim: they are closed even on a broken
	 * session. Its socket is shut first, so those calls fail at once (and
	 * free) instead of waiting on a peer that is gone or stuck. */
	if (s->broken)
		shutdown(s->fd, SHUT_RDWR);
	long long grace = ssh_now_ms() + SSH_GRACE_MS;
	int crc = 0;
	if (h)
		SSH_RETRY(crc, s, grace, libssh2_sftp_close_handle(h));
	if (created && sftp && !s->broken)
		SSH_RETRY(crc, s, grace, libssh2_sftp_unlink_ex(sftp, tmp, (unsigned)strlen(tmp)));
	if (sftp)
		SSH_RETRY(crc, s, grace, libssh2_sftp_shutdown(sftp));
	(void)crc;
	if (created && !sftp && !s->broken) {
		struct nova_err ignored;
		snprintf(cmd, sizeof(cmd), "rm -f -- %s", qtmp);
		(void)ssh_session_exec(&res, s, cmd, SSH_GRACE_MS, 4096, &ignored);
		ssh_exec_result_finish(&res);
	}
	return rc;
}

int ssh_session_upload_file(struct ssh_session *s, const char *remote_path,
			    const char *local_path, unsigned mode, unsigned timeout_ms,
			    struct nova_err *err)
{
	int fd = open(local_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *data;
	size_t len = 0;
	ssize_t n;
	int rc;
	if (fd < 0)
		return nova_err_set(err, NOVA_EINVAL, "", "%s: %s", local_path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return nova_err_set(err, NOVA_EINVAL, "", "%s is not a regular file", local_path);
	}
	if (!(data = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	while (len < (size_t)st.st_size && (n = read(fd, data + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (len != (size_t)st.st_size) {
		free(data);
		return nova_err_set(err, NOVA_EINVAL, "", "%s: short read", local_path);
	}
	rc = ssh_session_upload(s, remote_path, data, len, mode, timeout_ms, err);
	free(data);
	return rc;
}

int ssh_shell_quote(char *out, size_t len, const char *s, struct nova_err *err)
{
	size_t n = 0;
	if (len < 3)
		goto toolong;
	out[n++] = '\'';
	for (const char *c = s; *c; c++) {
		const char *add = *c == '\'' ? "'\\''" : NULL;
		size_t alen = add ? 4 : 1;
		if (n + alen + 2 > len)
			goto toolong;
		if (add)
			memcpy(out + n, add, alen);
		else
			out[n] = *c;
		n += alen;
	}
	out[n++] = '\'';
	out[n] = '\0';
	return 0;
toolong:
	if (len)
		out[0] = '\0';
	return nova_err_set(err, NOVA_EINVAL, "", "a shell argument is too long");
}
