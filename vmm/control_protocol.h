// The control socket's protocol (kairos run --api-sock PATH, kairos ctl):
// one JSON object a line each way, on a Unix stream socket. A request is
//
//   {"command": "status"}
//   {"command": "raise-event", "port": 5}
//
// and every request gets exactly one reply line, in order:
//
//   {"ok": true, "state": "running", ...}
//   {"ok": false, "error": "command: unknown 'frobnicate' (status, ...)"}
//
// JSON lines rather than Firecracker's HTTP: a client is `socat - UNIX:PATH`
// or ten lines of any language, and the parser is the one the config uses.
// The socket's input is untrusted (any process that may connect): a line
// is at most kMaxControlLine bytes, and nothing here throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kairos::vmm {

// A request line longer than this ends its connection (with one error reply).
inline constexpr size_t kMaxControlLine = 64 * 1024;

enum class ControlCommand { Status, Stats, Pause, Resume, Shutdown, Quit, Reset, RaiseEvent };

struct ControlRequest {
	ControlCommand command = ControlCommand::Status;
	uint32_t port = 0;  // raise-event's event-channel port

	bool operator==(const ControlRequest &) const = default;
};

// The command's name on the wire and in `kairos ctl`: "raise-event".
std::string_view to_string(ControlCommand command);
// The names of every command, for errors and --help: "status, stats, ...".
std::string control_command_names();

// One request line (without its newline). The error is one line naming
// the field at fault ("port: must be an integer 0..511, got \"x\"").
Result<ControlRequest> parse_control_request(std::string_view line);
// The request line (with its newline) `kairos ctl` sends.
std::string format_control_request(const ControlRequest &request);
// `kairos ctl PATH COMMAND [PORT]`'s words after PATH, as a request; the
// error names the word at fault.
Result<ControlRequest> control_request_from_words(const std::vector<std::string> &words);

// Reply lines, each ending with a newline. `data` is a JSON object whose
// keys go next to "ok".
std::string control_ok_reply(const nlohmann::json &data = nlohmann::json::object());
std::string control_error_reply(std::string_view message);

// Bytes from a connection, cut into lines. Holds at most kMaxControlLine
// bytes of a line not yet ended; beyond that the line is refused
// (overflowed()) and the caller closes the connection.
class ControlLineBuffer {
public:
	void append(std::string_view bytes);
	// The next complete line, without its newline (a trailing '\r' is
	// dropped too, for clients that send CRLF).
	std::optional<std::string> next_line();
	bool overflowed() const { return overflowed_; }

private:
	std::string pending_;
	bool overflowed_ = false;
};

}  // namespace kairos::vmm
