#include "outsourcing/priority.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <string_view>

#include "base/error.h"

namespace kairos::outsourcing {
namespace {

// A decimal number filling all of `text`, or -1.
int whole_number(std::string_view text)
{
	int value = -1;
	if (text.empty() || text.size() > 3)
		return -1;
	auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
	if (error != std::errc{} || end != text.data() + text.size())
		return -1;
	return value;
}

}  // namespace

Result<Priority> parse_priority(const std::string &text)
{
	std::string_view view = text;
	if (view == "normal")
		return Priority{};
	if (view.starts_with("nice:-")) {
		int n = whole_number(view.substr(6));
		if (n < 1 || n > 20)
			return make_error("outsourcing.priority: nice:-N takes N from 1 to 20, got \"{}\"", text);
		return Priority{Priority::Policy::Nice, -n};
	}
	if (view.starts_with("fifo:")) {
		int n = whole_number(view.substr(5));
		if (n < 1 || n > 99)
			return make_error("outsourcing.priority: fifo:N takes N from 1 to 99, got \"{}\"", text);
		return Priority{Priority::Policy::Fifo, n};
	}
	return make_error("outsourcing.priority: expected normal, nice:-N or fifo:N, got \"{}\"", text);
}

std::string to_string(const Priority &priority)
{
	switch (priority.policy) {
	case Priority::Policy::Nice:
		return fmt::format("nice:{}", priority.value);
	case Priority::Policy::Fifo:
		return fmt::format("fifo:{}", priority.value);
	case Priority::Policy::Normal:
		break;
	}
	return "normal";
}

Status apply_priority_to_this_thread(const Priority &priority)
{
	pid_t thread_id = gettid();
	switch (priority.policy) {
	case Priority::Policy::Normal:
		return {};
	case Priority::Policy::Nice:
		if (setpriority(PRIO_PROCESS, static_cast<id_t>(thread_id), priority.value) != 0)
			return errno_error(fmt::format("setpriority(thread {}, {})", thread_id, priority.value));
		return {};
	case Priority::Policy::Fifo: {
		sched_param parameters{};
		parameters.sched_priority = priority.value;
		// Reset on fork: a child the VMM spawns must not inherit real time.
		if (sched_setscheduler(thread_id, SCHED_FIFO | SCHED_RESET_ON_FORK, &parameters) != 0)
			return errno_error(fmt::format("sched_setscheduler(thread {}, SCHED_FIFO, {})", thread_id,
						       priority.value));
		return {};
	}
	}
	return {};
}

}  // namespace kairos::outsourcing
