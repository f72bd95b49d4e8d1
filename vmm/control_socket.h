// ControlSocket: `kairos run --api-sock PATH`, the Unix stream socket a
// running VM is driven through (`kairos ctl`, vmm/control_protocol.h for
// the lines it speaks). It is made during setup, before the threads
// confine themselves, and served by the main event loop: accept4, read,
// write and close on it are the loop's only new system calls
// (docs/SECURITY.md), and no thread is added.
//
// Its input is untrusted: at most kMaxConnections clients at once (one
// more is told so and closed), a line at most kMaxControlLine bytes, and
// while a reply is not yet written out the connection is not read, so a
// client that never reads holds one reply, not a growing queue.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/control_protocol.h"
#include "vmm/event_loop.h"

namespace kairos::vmm {

class ControlSocket {
public:
	static constexpr size_t kMaxConnections = 8;
	// The reply line to a request (control_ok_reply / control_error_reply).
	using Handler = std::function<std::string(const ControlRequest &)>;

	// Creates the socket at `path`, mode 0600, listening. A path that
	// exists is refused unless it is a socket nobody listens on (one a
	// killed kairos left), which is replaced. Errors name --api-sock and
	// the path; they are the user's to fix (exit 2).
	static Result<std::unique_ptr<ControlSocket>> open(const std::filesystem::path &path);
	// What open() says when bind(2) fails with `error`: strerror, and for
	// the causes a user does not guess from it, what to do.
	static std::string bind_failure(int error);
	// Closes every connection and removes the socket file, if the path
	// still names the socket made here.
	~ControlSocket();
	ControlSocket(const ControlSocket &) = delete;
	ControlSocket &operator=(const ControlSocket &) = delete;

	// From here on `loop` accepts clients and calls `handler` on the
	// loop's thread for each request. Both must outlive the serving.
	Status attach(EventLoop &loop, Handler handler);

	const std::filesystem::path &path() const { return path_; }
	size_t connections() const { return connections_.size(); }

private:
	struct Connection {
		UniqueFd fd;
		ControlLineBuffer input;
		std::string output;      // reply bytes not yet written
		bool peer_done = false;  // the client closed its side
	};

	ControlSocket(std::filesystem::path path, UniqueFd listener, dev_t device, ino_t inode)
		: path_(std::move(path)), listener_(std::move(listener)), device_(device), inode_(inode)
	{
	}
	void accept_clients();
	void on_readable(int fd);
	void on_writable(int fd);
	// Answers the complete lines received, one reply at a time, and
	// writes replies out; then watches the fd for what comes next.
	void serve(int fd);
	// Writes as much of the output as the socket takes; false on an error.
	static bool write_out(Connection &connection);
	void close_connection(int fd);

	std::filesystem::path path_;
	UniqueFd listener_;
	dev_t device_;  // of the socket file made here, to remove only that
	ino_t inode_;
	EventLoop *loop_ = nullptr;
	Handler handler_;
	std::map<int, Connection> connections_;
};

}  // namespace kairos::vmm
