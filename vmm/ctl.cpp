#include "vmm/ctl.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "abi/kairos_abi.h"
#include "base/error.h"
#include "base/unique_fd.h"
#include "vmm/control_protocol.h"

namespace kairos::vmm {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// Long enough for the stats of a VM in the emulated test machine.
constexpr int kReplyTimeoutS = 30;

constexpr const char *kUsage = R"(usage: kairos ctl SOCKET COMMAND [PORT]

Drives a running VM through the control socket of `kairos run --api-sock
SOCKET`. Prints the reply as JSON on stdout.

commands:
  status            running or paused, uptime, paused time, vCPUs
  stats             the --stats document as it is now (JSON)
  pause             the vCPUs stop entering the guest; guest time keeps
                    following the host's, and the pause is stolen time
  resume            they run again; timers that fell due meanwhile fire once
  shutdown          press the ACPI power button: a guest that handles it
                    (Kairos's image does, with acpid) powers off cleanly,
                    and kairos run exits 0; one that does not runs on
  quit              stop the VM now, without asking the guest (kairos run
                    exits 0, "quit by the user")
  reset             stop the VM as a guest reset does (exit 0)
  raise-event PORT  raise event-channel PORT (0..{}) in the guest

exit codes:
  0    the VM answered ok
  1    the VM answered an error, or the socket could not be reached
  2    bad usage (unknown command, bad PORT)

The protocol is one JSON object a line each way; see README.md.
)";

int fail(int code, const std::string &message)
{
	fmt::print(stderr, "kairos ctl: {}\n", message);
	return code;
}

// A connected socket, or the reason in a sentence.
Result<UniqueFd> connect_to(const std::string &path)
{
	sockaddr_un address{};
	address.sun_family = AF_UNIX;
	if (path.empty() || path.size() >= sizeof address.sun_path)
		return make_error("{}: not a usable socket path (1..{} bytes)", path, sizeof address.sun_path - 1);
	std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
	struct stat file {};
	if (stat(path.c_str(), &file) != 0)
		return make_error("{}: {} (is `kairos run --api-sock {}` running?)", path, std::strerror(errno), path);
	if (!S_ISSOCK(file.st_mode))
		return make_error("{}: not a socket", path);
	UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!fd)
		return errno_error("socket");
	if (connect(fd.get(), reinterpret_cast<const sockaddr *>(&address), sizeof address) != 0)
		return make_error("{}: {} (the kairos that made it has stopped?)", path, std::strerror(errno));
	timeval timeout{kReplyTimeoutS, 0};
	setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
	return fd;
}

Status send_all(int fd, const std::string &text)
{
	size_t done = 0;
	while (done < text.size()) {
		ssize_t written = send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return errno_error("sending the request");
		done += static_cast<size_t>(written);
	}
	return {};
}

// The reply line; bounded, as a VMM's stats are well below this.
Result<std::string> read_reply(int fd)
{
	constexpr size_t kMaxReply = 64 << 20;
	std::string reply;
	char chunk[4096];
	while (reply.find('\n') == std::string::npos) {
		ssize_t got = read(fd, chunk, sizeof chunk);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return make_error("no reply within {} s", kReplyTimeoutS);
		if (got < 0)
			return errno_error("reading the reply");
		if (got == 0)
			return make_error("the VMM closed the connection without a reply");
		reply.append(chunk, static_cast<size_t>(got));
		if (reply.size() > kMaxReply)
			return make_error("a reply longer than {} bytes", kMaxReply);
	}
	return reply.substr(0, reply.find('\n'));
}

int print_reply(const ControlRequest &request, const std::string &line)
{
	nlohmann::json reply = nlohmann::json::parse(line, nullptr, false);
	if (reply.is_discarded() || !reply.is_object() || !reply.contains("ok"))
		return fail(kExitFailed, "not a reply: " + line.substr(0, 200));
	if (reply["ok"] != true) {
		auto error = reply.find("error");
		return fail(kExitFailed, error != reply.end() && error->is_string() ? error->get<std::string>()
										    : line.substr(0, 200));
	}
	reply.erase("ok");
	const nlohmann::json &shown =
		request.command == ControlCommand::Stats && reply.contains("stats") ? reply["stats"] : reply;
	fmt::print("{}\n", shown.dump(2));
	return 0;
}

}  // namespace

int ctl_command(const std::vector<std::string> &args)
{
	for (const auto &word : args)
		if (word == "--help" || word == "-h") {
			fmt::print(fmt::runtime(kUsage), KAIROS_EVENT_PORTS - 1);
			return 0;
		}
	if (args.size() < 2)
		return fail(kExitUsage, "needs a SOCKET and a COMMAND; see 'kairos ctl --help'");
	auto request = control_request_from_words(std::vector<std::string>(args.begin() + 1, args.end()));
	if (!request)
		return fail(kExitUsage, request.error().message + "; see 'kairos ctl --help'");
	auto fd = connect_to(args[0]);
	if (!fd)
		return fail(kExitFailed, fd.error().message);
	if (auto sent = send_all(fd->get(), format_control_request(*request)); !sent)
		return fail(kExitFailed, sent.error().message);
	auto reply = read_reply(fd->get());
	if (!reply)
		return fail(kExitFailed, reply.error().message);
	return print_reply(*request, *reply);
}

}  // namespace kairos::vmm
