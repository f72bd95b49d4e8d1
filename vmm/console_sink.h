// ConsoleSink: where guest console bytes leave the VMM, written without ever
// blocking (issue 12: a stdout pipe nobody read froze the vCPUs and the
// loop, SIGTERM included).
//
// How others do it: Firecracker sets O_NONBLOCK on stdout itself
// (set_stdout_nonblocking in its device manager) and counts the bytes a
// failed write loses (vm-superio's tx_lost_byte, METRICS.uart
// .missed_write_count); QEMU's fd chardev sets O_NONBLOCK on its output fd
// too (qemu_chr_open_fd); cloud-hypervisor buffers 16 KiB (vmm/src/
// serial_buffer.rs) and polls for EPOLLOUT, but only on a PTY it opened
// itself. O_NONBLOCK lives on the open file description, which stdout
// shares with the shell and every process on the same terminal or pipe:
// set there, it makes their writes fail with EAGAIN, also after we exit.
// So a pipe, FIFO or terminal is reopened through /proc/self/fd (a new,
// private description of the same pipe or tty) and only that one is
// non-blocking. Sockets take send(MSG_DONTWAIT); regular files never block
// in this sense and are written as they are.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

#include "base/result.h"
#include "base/unique_fd.h"

namespace kairos::vmm {

class ConsoleSink {
public:
	enum class Kind {
		Discard,  // console.output "none"
		File,     // a regular file or block device: always writable
		Private,  // our own O_NONBLOCK description of a pipe, FIFO or tty
		Socket,   // send(MSG_DONTWAIT): per call, no flag on the fd
		Polled,   // reopening failed: poll(0), then at most PIPE_BUF bytes
	};
	struct Written {
		size_t bytes = 0;
		bool would_block = false;
		int error = 0;  // errno of a failure (EPIPE: the reader went away)
	};

	static ConsoleSink discard() { return ConsoleSink(Kind::Discard, UniqueFd(), -1); }
	// Truncates or creates `path`.
	static Result<ConsoleSink> file(const std::filesystem::path &path);
	// An inherited fd (stdout), never made non-blocking itself.
	static ConsoleSink inherited(int fd);

	// Writes a prefix of first then second; never blocks.
	Written write(std::span<const uint8_t> first, std::span<const uint8_t> second);
	Kind kind() const { return kind_; }
	// The fd to poll for POLLOUT after a write would block; -1 discards.
	int fd() const { return fd_; }

private:
	ConsoleSink(Kind kind, UniqueFd owned, int fd) : kind_(kind), owned_(std::move(owned)), fd_(fd) {}

	Kind kind_;
	UniqueFd owned_;
	int fd_;
};

}  // namespace kairos::vmm
