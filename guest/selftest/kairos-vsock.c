// kairos-vsock: both ends of the vsock test (test/integration/vsock.sh).
//
//   kairos-vsock listen PORT BYTES        in the guest: accept one connection
//   kairos-vsock connect CID PORT BYTES   on the host: connect to the guest
//                                         (retrying while it boots)
//
// Once connected, each end sends BYTES of its own deterministic pattern
// while it receives the other's (both at once: a peer that only sent
// would fill the socket buffers and stall), then shuts down its sending
// half and waits for the peer's end of stream, so no byte is cut off by a
// close. It prints, as "KAIROS-GUEST key=value" lines (the guest's /init
// report format; the host's are read the same way):
//   vsock-sent-fnv=H      FNV-1a 64 of what it sent
//   vsock-received-fnv=H  FNV-1a 64 of what it received
//   vsock-expected-fnv=H  FNV-1a 64 of the peer's pattern, computed here
//   vsock-bytes=N vsock-mib-per-s=R
// Exit 0 when BYTES went each way and the received checksum is the
// expected one; 1 otherwise, with the reason on stderr.
#define _GNU_SOURCE  // accept4
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#define CHUNK 65536
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
// Bound the whole run: the test's kairos has its own timeout above this.
#define TIMEOUT_SECONDS 300

enum role { LISTENER = 1, CONNECTOR = 2 };

static uint8_t pattern(enum role role, uint64_t offset)
{
	return (uint8_t)(offset * 131 + (offset >> 13) + (unsigned)role * 77);
}

static uint64_t fnv(uint64_t hash, const uint8_t *bytes, size_t length)
{
	for (size_t i = 0; i < length; ++i)
		hash = (hash ^ bytes[i]) * FNV_PRIME;
	return hash;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "kairos-vsock: %s: %s\n", what, strerror(errno));
	return 1;
}

static uint64_t parse_number(const char *text, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 0);
	if (errno || *end || end == text) {
		fprintf(stderr, "kairos-vsock: %s '%s' is not a number\n", what, text);
		exit(2);
	}
	return value;
}

static int accept_one(uint32_t port)
{
	int server = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (server < 0)
		return -fail("socket(AF_VSOCK)");
	struct sockaddr_vm address = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	if (bind(server, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(server, 1) != 0)
		return -fail("bind/listen");
	printf("KAIROS-GUEST vsock-listening=%" PRIu32 "\n", port);
	fflush(stdout);
	int peer = accept4(server, NULL, NULL, SOCK_CLOEXEC);
	if (peer < 0)
		return -fail("accept");
	close(server);
	return peer;
}

// The guest boots while this retries: refused or reset until its
// listener is up, no such device until its driver is.
static int connect_retrying(uint32_t cid, uint32_t port)
{
	const double deadline = now() + TIMEOUT_SECONDS - 30;
	for (;;) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -fail("socket(AF_VSOCK)");
		struct sockaddr_vm address = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
		if (connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0)
			return fd;
		int saved = errno;
		close(fd);
		errno = saved;
		if (now() > deadline)
			return -fail("connect (gave up)");
		usleep(200 * 1000);
	}
}

static int exchange(int fd, enum role role, uint64_t bytes)
{
	const enum role peer_role = role == LISTENER ? CONNECTOR : LISTENER;
	static uint8_t out[CHUNK], in[CHUNK];
	uint64_t sent = 0, received = 0, expected_hash = FNV_OFFSET;
	uint64_t sent_hash = FNV_OFFSET, received_hash = FNV_OFFSET;
	int shut = 0, end_of_stream = 0;
	const double start = now();

	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		return fail("O_NONBLOCK");
	for (uint64_t offset = 0; offset < bytes; offset += CHUNK) {
		size_t length = bytes - offset < CHUNK ? (size_t)(bytes - offset) : CHUNK;
		for (size_t i = 0; i < length; ++i)
			in[i] = pattern(peer_role, offset + i);
		expected_hash = fnv(expected_hash, in, length);
	}
	// Until both halves are done: the peer may end its stream while
	// this end still has bytes to send.
	while (!end_of_stream || sent < bytes) {
		if (sent == bytes && !shut) {
			if (shutdown(fd, SHUT_WR) != 0)
				return fail("shutdown");
			shut = 1;
		}
		struct pollfd poll_fd = {.fd = fd,
					 .events = (end_of_stream ? 0 : POLLIN) | (sent < bytes ? POLLOUT : 0)};
		if (poll(&poll_fd, 1, 1000 * TIMEOUT_SECONDS) <= 0)
			return fail("poll (no progress)");
		if (sent < bytes && (poll_fd.revents & POLLOUT)) {
			size_t length = bytes - sent < CHUNK ? (size_t)(bytes - sent) : CHUNK;
			for (size_t i = 0; i < length; ++i)
				out[i] = pattern(role, sent + i);
			ssize_t done = send(fd, out, length, MSG_NOSIGNAL);
			if (done < 0 && errno != EAGAIN && errno != EINTR)
				return fail("send");
			if (done > 0) {
				sent_hash = fnv(sent_hash, out, (size_t)done);
				sent += (uint64_t)done;
			}
		}
		if (!end_of_stream && (poll_fd.revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t done = recv(fd, in, sizeof(in), 0);
			if (done < 0 && errno != EAGAIN && errno != EINTR)
				return fail("recv");
			if (done == 0)
				end_of_stream = 1;  // the peer sent all it will
			if (done > 0) {
				received_hash = fnv(received_hash, in, (size_t)done);
				received += (uint64_t)done;
			}
		}
	}
	const double seconds = now() - start;
	printf("KAIROS-GUEST vsock-sent-fnv=%016" PRIx64 "\n", sent_hash);
	printf("KAIROS-GUEST vsock-received-fnv=%016" PRIx64 "\n", received_hash);
	printf("KAIROS-GUEST vsock-expected-fnv=%016" PRIx64 "\n", expected_hash);
	printf("KAIROS-GUEST vsock-bytes=%" PRIu64 "/%" PRIu64 "\n", sent, received);
	printf("KAIROS-GUEST vsock-mib-per-s=%.1f\n", seconds > 0 ? 2.0 * (double)bytes / (1 << 20) / seconds : 0.0);
	fflush(stdout);
	close(fd);
	if (sent != bytes || received != bytes || received_hash != expected_hash) {
		fprintf(stderr, "kairos-vsock: sent %" PRIu64 ", received %" PRIu64 " of %" PRIu64 " bytes, %s\n",
			sent, received, bytes, received_hash == expected_hash ? "checksum ok" : "checksum mismatch");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	alarm(TIMEOUT_SECONDS);
	if (argc == 4 && strcmp(argv[1], "listen") == 0) {
		int fd = accept_one((uint32_t)parse_number(argv[2], "port"));
		return fd < 0 ? 1 : exchange(fd, LISTENER, parse_number(argv[3], "bytes"));
	}
	if (argc == 5 && strcmp(argv[1], "connect") == 0) {
		int fd = connect_retrying((uint32_t)parse_number(argv[2], "cid"), (uint32_t)parse_number(argv[3], "port"));
		return fd < 0 ? 1 : exchange(fd, CONNECTOR, parse_number(argv[4], "bytes"));
	}
	fprintf(stderr, "usage: kairos-vsock listen PORT BYTES | connect CID PORT BYTES\n");
	return 2;
}
