#include "vmm/control_protocol.h"

#include <array>
#include <charconv>

#include "abi/kairos_abi.h"
#include "base/error.h"

namespace kairos::vmm {
namespace {

using nlohmann::json;

struct NamedCommand {
	ControlCommand command;
	std::string_view name;
};
constexpr std::array<NamedCommand, 8> kCommands = {{{ControlCommand::Status, "status"},
						    {ControlCommand::Stats, "stats"},
						    {ControlCommand::Pause, "pause"},
						    {ControlCommand::Resume, "resume"},
						    {ControlCommand::Shutdown, "shutdown"},
						    {ControlCommand::Quit, "quit"},
						    {ControlCommand::Reset, "reset"},
						    {ControlCommand::RaiseEvent, "raise-event"}}};

std::optional<ControlCommand> command_named(std::string_view name)
{
	for (const auto &named : kCommands)
		if (named.name == name)
			return named.command;
	return std::nullopt;
}

// What a value is, for errors: the value itself when short, else its type.
std::string describe_value(const json &value)
{
	std::string text = value.dump();
	return text.size() <= 40 ? text : std::string(value.type_name());
}

std::string port_error(std::string_view got)
{
	return fmt::format("port: must be an integer 0..{}, got {}", KAIROS_EVENT_PORTS - 1, got);
}

Result<uint32_t> port_of(const json &value)
{
	if (!value.is_number_integer())
		return Error{port_error(describe_value(value))};
	bool in_range = value.is_number_unsigned()
				? value.get<uint64_t>() < KAIROS_EVENT_PORTS
				: value.get<int64_t>() >= 0 && value.get<int64_t>() < KAIROS_EVENT_PORTS;
	if (!in_range)
		return Error{port_error(value.dump())};
	return static_cast<uint32_t>(value.get<uint64_t>());
}

Result<ControlRequest> request_from_object(const json &root)
{
	if (!root.is_object())
		return make_error("a request must be a JSON object, got {}", describe_value(root));
	auto command = root.find("command");
	if (command == root.end())
		return make_error("command: is required ({})", control_command_names());
	if (!command->is_string())
		return make_error("command: must be a string, got {}", describe_value(*command));
	auto known = command_named(command->get_ref<const std::string &>());
	if (!known)
		return make_error("command: unknown {} ({})", describe_value(*command), control_command_names());
	ControlRequest request{*known};
	for (const auto &item : root.items()) {
		if (item.key() == "command")
			continue;
		if (item.key() != "port" || request.command != ControlCommand::RaiseEvent)
			return make_error("{}: unknown key for {}", describe_value(json(item.key())),
					  to_string(request.command));
	}
	if (request.command != ControlCommand::RaiseEvent)
		return request;
	auto port = root.find("port");
	if (port == root.end())
		return make_error("port: is required for raise-event");
	KAIROS_TRY_ASSIGN(number, port_of(*port));
	request.port = number;
	return request;
}

}  // namespace

std::string_view to_string(ControlCommand command)
{
	for (const auto &named : kCommands)
		if (named.command == command)
			return named.name;
	return "?";
}

std::string control_command_names()
{
	std::string names;
	for (const auto &named : kCommands)
		names += (names.empty() ? "" : ", ") + std::string(named.name);
	return names;
}

Result<ControlRequest> parse_control_request(std::string_view line)
{
	// No exceptions: a client's garbage is an error reply, not a throw.
	json root = json::parse(line.begin(), line.end(), nullptr, false);
	if (root.is_discarded())
		return make_error("invalid JSON: a request is one JSON object on one line, e.g. "
				  "{{\"command\": \"status\"}}");
	return request_from_object(root);
}

std::string format_control_request(const ControlRequest &request)
{
	json line = {{"command", to_string(request.command)}};
	if (request.command == ControlCommand::RaiseEvent)
		line["port"] = request.port;
	return line.dump() + "\n";
}

Result<ControlRequest> control_request_from_words(const std::vector<std::string> &words)
{
	if (words.empty())
		return make_error("no command given ({})", control_command_names());
	auto command = command_named(words[0]);
	if (!command)
		return make_error("unknown command '{}' ({})", words[0], control_command_names());
	ControlRequest request{*command};
	size_t wanted = *command == ControlCommand::RaiseEvent ? 2 : 1;
	if (words.size() < wanted)
		return make_error("raise-event: needs a PORT, an integer 0..{}", KAIROS_EVENT_PORTS - 1);
	if (words.size() > wanted)
		return make_error("unexpected argument '{}' after {}", words[wanted], words[0]);
	if (*command != ControlCommand::RaiseEvent)
		return request;
	const std::string &text = words[1];
	uint32_t port = 0;
	auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
	if (text.empty() || error != std::errc{} || end != text.data() + text.size() || port >= KAIROS_EVENT_PORTS)
		return Error{port_error("'" + text + "'")};
	request.port = port;
	return request;
}

std::string control_ok_reply(const nlohmann::json &data)
{
	json reply = {{"ok", true}};
	if (data.is_object())
		reply.update(data);
	return reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string control_error_reply(std::string_view message)
{
	// Invalid UTF-8 from a client's line is replaced, never thrown about.
	return json{{"ok", false}, {"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

void ControlLineBuffer::append(std::string_view bytes)
{
	if (overflowed_)
		return;
	pending_.append(bytes);
	size_t last_newline = pending_.rfind('\n');
	size_t unended = last_newline == std::string::npos ? pending_.size() : pending_.size() - last_newline - 1;
	if (unended > kMaxControlLine)
		overflowed_ = true;
}

std::optional<std::string> ControlLineBuffer::next_line()
{
	if (overflowed_)
		return std::nullopt;
	size_t newline = pending_.find('\n');
	if (newline == std::string::npos)
		return std::nullopt;
	if (newline > kMaxControlLine) {
		overflowed_ = true;
		return std::nullopt;
	}
	std::string line = pending_.substr(0, newline);
	pending_.erase(0, newline + 1);
	if (line.ends_with('\r'))
		line.pop_back();
	return line;
}

}  // namespace kairos::vmm
