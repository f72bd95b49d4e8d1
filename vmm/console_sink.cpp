#include "vmm/console_sink.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/error.h"

namespace kairos::vmm {
namespace {

bool writable_now(int fd)
{
	pollfd poll_fd{fd, POLLOUT, 0};
	return poll(&poll_fd, 1, 0) == 1 && (poll_fd.revents & POLLOUT);
}

// A pipe with room for one page takes PIPE_BUF bytes without waiting
// (pipe(7)), so the Polled fallback writes at most that much.
int clamp_to_pipe_buf(iovec *iov, int count)
{
	size_t left = PIPE_BUF;
	for (int i = 0; i < count; ++i) {
		iov[i].iov_len = std::min(iov[i].iov_len, left);
		left -= iov[i].iov_len;
	}
	return iov[1].iov_len == 0 ? 1 : count;
}

ssize_t send_vector(int fd, iovec *iov, int count)
{
	msghdr message{};
	message.msg_iov = iov;
	message.msg_iovlen = static_cast<size_t>(count);
	return sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace

Result<ConsoleSink> ConsoleSink::file(const std::filesystem::path &path)
{
	UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	if (!fd)
		return errno_error("console.output " + path.string());
	int raw = fd.get();
	return ConsoleSink(Kind::File, std::move(fd), raw);
}

ConsoleSink ConsoleSink::inherited(int fd)
{
	struct stat status {};
	if (fstat(fd, &status) == 0 && (S_ISREG(status.st_mode) || S_ISBLK(status.st_mode)))
		return ConsoleSink(Kind::File, UniqueFd(), fd);
	if (S_ISSOCK(status.st_mode))
		return ConsoleSink(Kind::Socket, UniqueFd(), fd);
	// O_NOCTTY: reopening a terminal must not make it our controlling one.
	std::string path = fmt::format("/proc/self/fd/{}", fd);
	UniqueFd own(open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
	if (!own)
		return ConsoleSink(Kind::Polled, UniqueFd(), fd);
	int raw = own.get();
	return ConsoleSink(Kind::Private, std::move(own), raw);
}

ConsoleSink::Written ConsoleSink::write(std::span<const uint8_t> first, std::span<const uint8_t> second)
{
	if (kind_ == Kind::Discard)
		return {first.size() + second.size()};
	if (kind_ == Kind::Polled && !writable_now(fd_))
		return {0, true};
	iovec iov[2] = {{const_cast<uint8_t *>(first.data()), first.size()},
			{const_cast<uint8_t *>(second.data()), second.size()}};
	int count = second.empty() ? 1 : 2;
	if (kind_ == Kind::Polled)
		count = clamp_to_pipe_buf(iov, count);
	ssize_t written;
	do {
		written = kind_ == Kind::Socket ? send_vector(fd_, iov, count) : writev(fd_, iov, count);
	} while (written < 0 && errno == EINTR);
	if (written >= 0)
		return {static_cast<size_t>(written)};
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return {0, true};
	return {0, false, errno};
}

}  // namespace kairos::vmm
