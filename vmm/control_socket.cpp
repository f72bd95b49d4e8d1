#include "vmm/control_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace kairos::vmm {
namespace {

constexpr int kBacklog = 8;
constexpr size_t kReadChunk = 4096;

Error path_error(const std::filesystem::path &path, const std::string &what)
{
	return make_error("--api-sock {}: {}", path.string(), what);
}

Result<sockaddr_un> address_of(const std::filesystem::path &path)
{
	sockaddr_un address{};
	address.sun_family = AF_UNIX;
	const std::string &text = path.native();
	if (text.empty())
		return make_error("--api-sock: needs a file name");
	if (text.size() >= sizeof address.sun_path)
		return path_error(path, fmt::format("longer than {} bytes, the limit of a Unix socket's path",
						    sizeof address.sun_path - 1));
	std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
	return address;
}

// Whether a process accepts connections on the socket at `address`.
bool someone_listens(const sockaddr_un &address)
{
	UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!probe)
		return false;
	return connect(probe.get(), reinterpret_cast<const sockaddr *>(&address), sizeof address) == 0 ||
	       errno != ECONNREFUSED;
}

// An existing path is refused, unless it is a socket no one listens on,
// which a kairos that was killed leaves behind: that one is removed.
Status clear_path(const std::filesystem::path &path, const sockaddr_un &address)
{
	struct stat existing {};
	if (lstat(path.c_str(), &existing) != 0)
		return errno == ENOENT ? Status{} : path_error(path, std::strerror(errno));
	if (!S_ISSOCK(existing.st_mode))
		return path_error(path, "exists and is not a socket; refusing to replace it");
	if (someone_listens(address))
		return path_error(path, "a process already listens on this socket (another kairos?)");
	if (unlink(path.c_str()) != 0)
		return path_error(path, fmt::format("cannot remove the stale socket: {}", std::strerror(errno)));
	return {};
}

}  // namespace

std::string ControlSocket::bind_failure(int error)
{
	switch (error) {
	case ENOENT:
		return fmt::format("{}: its folder does not exist", std::strerror(error));
	case ENXIO:
	case EOPNOTSUPP:
		// 9p (scripts/with-kvm's share of the working tree and /tmp) says
		// ENXIO; some FUSE file systems say EOPNOTSUPP.
		return fmt::format("{}: this file system cannot hold a Unix socket; put it on a local one, such "
				   "as /run or $XDG_RUNTIME_DIR",
				   std::strerror(error));
	default:
		return std::strerror(error);
	}
}

Result<std::unique_ptr<ControlSocket>> ControlSocket::open(const std::filesystem::path &path)
{
	KAIROS_TRY_ASSIGN(address, address_of(path));
	KAIROS_TRY(clear_path(path, address));
	UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	if (!listener)
		return path_error(path, fmt::format("socket: {}", std::strerror(errno)));
	if (bind(listener.get(), reinterpret_cast<const sockaddr *>(&address), sizeof address) != 0)
		return path_error(path, bind_failure(errno));
	// Before listen(): until then nobody can connect, so no other user
	// gets in between. The VM is the user's alone.
	struct stat made {};
	if (chmod(path.c_str(), 0600) != 0 || lstat(path.c_str(), &made) != 0 ||
	    listen(listener.get(), kBacklog) != 0) {
		int saved = errno;
		unlink(path.c_str());
		return path_error(path, std::strerror(saved));
	}
	return std::unique_ptr<ControlSocket>(new ControlSocket(path, std::move(listener), made.st_dev, made.st_ino));
}

ControlSocket::~ControlSocket()
{
	connections_.clear();
	listener_.reset();
	// Confined, the main thread may stat and unlinkat (docs/SECURITY.md).
	// A file someone put there since is not ours to remove.
	struct stat now {};
	if (lstat(path_.c_str(), &now) == 0 && S_ISSOCK(now.st_mode) && now.st_dev == device_ && now.st_ino == inode_)
		unlinkat(AT_FDCWD, path_.c_str(), 0);
}

Status ControlSocket::attach(EventLoop &loop, Handler handler)
{
	loop_ = &loop;
	handler_ = std::move(handler);
	return loop.watch(listener_.get(), [this] { accept_clients(); });
}

void ControlSocket::accept_clients()
{
	for (;;) {
		UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
		if (!client)
			return;  // EAGAIN: none left; anything else: the client's loss
		if (connections_.size() >= kMaxConnections) {
			std::string busy = control_error_reply(
				fmt::format("too many control connections (at most {})", kMaxConnections));
			[[maybe_unused]] ssize_t ignored = write(client.get(), busy.data(), busy.size());
			continue;  // closed here
		}
		int fd = client.get();
		connections_[fd].fd = std::move(client);
		if (!loop_->watch(fd, [this, fd] { on_readable(fd); }))
			connections_.erase(fd);
	}
}

void ControlSocket::on_readable(int fd)
{
	auto it = connections_.find(fd);
	if (it == connections_.end())
		return;
	Connection &connection = it->second;
	char chunk[kReadChunk];
	ssize_t got = read(fd, chunk, sizeof chunk);
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got <= 0) {
		connection.peer_done = true;
	} else {
		connection.input.append(std::string_view(chunk, static_cast<size_t>(got)));
	}
	serve(fd);
}

void ControlSocket::on_writable(int fd)
{
	auto it = connections_.find(fd);
	if (it == connections_.end())
		return;
	if (!write_out(it->second)) {
		close_connection(fd);
		return;
	}
	serve(fd);
}

void ControlSocket::serve(int fd)
{
	Connection &connection = connections_.at(fd);
	// One reply at a time: the next line waits until this one is out.
	while (connection.output.empty()) {
		auto line = connection.input.next_line();
		if (!line)
			break;
		auto request = parse_control_request(*line);
		connection.output = request ? handler_(*request) : control_error_reply(request.error().message);
		if (!write_out(connection)) {
			close_connection(fd);
			return;
		}
	}
	if (connection.input.overflowed()) {
		connection.output += control_error_reply(
			fmt::format("request longer than {} bytes; closing the connection", kMaxControlLine));
		write_out(connection);
		close_connection(fd);
		return;
	}
	if (!connection.output.empty()) {
		if (!loop_->watch_writable(fd, [this, fd] { on_writable(fd); }))
			close_connection(fd);
		return;
	}
	if (connection.peer_done) {
		close_connection(fd);
		return;
	}
	if (!loop_->watch(fd, [this, fd] { on_readable(fd); }))
		close_connection(fd);
}

bool ControlSocket::write_out(Connection &connection)
{
	while (!connection.output.empty()) {
		ssize_t written = write(connection.fd.get(), connection.output.data(), connection.output.size());
		if (written < 0 && errno == EINTR)
			continue;
		if (written < 0 && errno == EAGAIN)
			return true;  // the rest when the socket takes it
		if (written <= 0)
			return false;  // the client went away (EPIPE: SIGPIPE is ignored)
		connection.output.erase(0, static_cast<size_t>(written));
	}
	return true;
}

void ControlSocket::close_connection(int fd)
{
	loop_->unwatch(fd);
	connections_.erase(fd);
}

}  // namespace kairos::vmm
