// The capability drop (base/capabilities.h): the /proc fields it is
// checked by, and the drop itself in a forked child, so this process keeps
// its own sets. Run as root (as here and in CI) the child starts with every
// capability and the tests see each one go; run unprivileged they check
// what little there is to drop.
#include <catch2/catch.hpp>

#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include "base/capabilities.h"
#include "child_process.h"

using kairos::CapabilitySet;

namespace {

// Runs body in a forked child; returns what it wrote to the pipe (empty:
// every check in it passed). body returns "" or a description of the
// first failed check.
template <typename Body>
std::string in_child(Body body)
{
	auto child = kairos::test::run_in_child([&] {
		std::string failure = body();
		ssize_t ignored = write(STDERR_FILENO, failure.data(), failure.size());
		(void)ignored;
		_exit(failure.empty() ? 0 : 1);
	});
	REQUIRE(child.exit_code >= 0);
	if (child.exit_code != 0 && child.stderr_text.empty())
		return "the child exited with " + std::to_string(child.exit_code);
	return child.stderr_text;
}

std::string hex(CapabilitySet set)
{
	char text[24];
	snprintf(text, sizeof text, "%#llx", static_cast<unsigned long long>(set.mask()));
	return text;
}

// nice -1 on the calling thread: allowed only with CAP_SYS_NICE (or an
// RLIMIT_NICE above 20, which no test host sets).
bool may_raise_nice()
{
	if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), -1) == 0) {
		setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 0);
		return true;
	}
	return false;
}

}  // namespace

TEST_CASE("capabilities: a set is the kernel's mask, named as libcap names them", "[capabilities]")
{
	CapabilitySet nice = CapabilitySet::of({CAP_SYS_NICE});
	CHECK(nice.mask() == 0x800000);
	CHECK(nice.contains(CAP_SYS_NICE));
	CHECK_FALSE(nice.contains(CAP_SYS_ADMIN));
	CHECK_FALSE(nice.contains(-1));
	CHECK_FALSE(nice.contains(64));
	CHECK(nice.names() == std::vector<std::string>{"cap_sys_nice"});
	CHECK(CapabilitySet{}.empty());
	CHECK(CapabilitySet{}.names().empty());
	CapabilitySet two = CapabilitySet::of({CAP_SYS_NICE, CAP_CHOWN});
	CHECK(two.names() == std::vector<std::string>{"cap_chown", "cap_sys_nice"});
	CHECK((two & nice) == nice);
	CHECK((CapabilitySet::of({CAP_CHOWN}) | nice) == two);
}

TEST_CASE("capabilities: the five sets are read from /proc status", "[capabilities]")
{
	auto sets = kairos::capabilities_from_status("Name:\tkairos\nCapInh:\t0000000000000000\n"
						     "CapPrm:\t0000000000800000\nCapEff:\t0000000000800001\n"
						     "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n"
						     "NoNewPrivs:\t1\n");
	REQUIRE(sets.ok());
	CHECK(sets->inheritable.empty());
	CHECK(sets->permitted == CapabilitySet::of({CAP_SYS_NICE}));
	CHECK(sets->effective == CapabilitySet::of({CAP_SYS_NICE, CAP_CHOWN}));
	CHECK(sets->bounding.mask() == 0x1ffffffffffULL);
	CHECK(sets->ambient.empty());

	auto missing = kairos::capabilities_from_status("CapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\n");
	REQUIRE_FALSE(missing.ok());
	CHECK(missing.error().message == "/proc status: no CapAmb field");
	auto garbage = kairos::capabilities_from_status("CapInh:\t0\nCapPrm:\tzz\n");
	REQUIRE_FALSE(garbage.ok());
	CHECK(garbage.error().message == "/proc status: CapPrm is not a hexadecimal mask: 'zz'");

	auto mine = kairos::capabilities_of_this_thread();
	REQUIRE(mine.ok());
	auto every = kairos::capabilities_of_every_thread();
	REQUIRE(every.ok());
	CHECK(every->threads >= 1);
}

TEST_CASE("capabilities: a drop leaves only what is kept, in every set and every later thread", "[capabilities]")
{
	const CapabilitySet keep = CapabilitySet::of({CAP_SYS_NICE});
	std::string failure = in_child([&]() -> std::string {
		auto before = kairos::capabilities_of_this_thread();
		if (!before.ok())
			return before.error().message;
		auto dropped = kairos::drop_capabilities_except(keep);
		if (!dropped.ok())
			return dropped.error().message;
		CapabilitySet expected = keep & before->permitted;
		if (dropped->kept != expected || dropped->before != before->permitted)
			return "kept " + hex(dropped->kept) + ", expected " + hex(expected);
		auto after = kairos::capabilities_of_this_thread();
		if (!after.ok())
			return after.error().message;
		if (after->effective != expected || after->permitted != expected)
			return "effective " + hex(after->effective) + ", permitted " + hex(after->permitted) +
			       ", expected " + hex(expected);
		if (!after->inheritable.empty() || !after->ambient.empty())
			return "inheritable " + hex(after->inheritable) + ", ambient " + hex(after->ambient);
		bool could_drop_bounding = before->effective.contains(CAP_SETPCAP);
		if (dropped->bounding_dropped != could_drop_bounding)
			return "bounding_dropped is wrong";
		if (could_drop_bounding && after->bounding != (keep & before->bounding))
			return "bounding " + hex(after->bounding);
		// The kept capability still works; a later thread has no more.
		if (expected.contains(CAP_SYS_NICE) && !may_raise_nice())
			return "CAP_SYS_NICE was kept but nice -1 failed";
		kairos::Result<kairos::ProcessCapabilities> every = kairos::capabilities_of_every_thread();
		std::thread([&] { every = kairos::capabilities_of_every_thread(); }).join();
		if (!every.ok())
			return every.error().message;
		if (every->threads != 2 || every->permitted != expected)
			return std::to_string(every->threads) + " threads, permitted " + hex(every->permitted);
		return "";
	});
	CHECK(failure == "");
}

TEST_CASE("capabilities: after a drop of everything, raising a priority fails", "[capabilities]")
{
	std::string failure = in_child([]() -> std::string {
		auto dropped = kairos::drop_capabilities_except({});
		if (!dropped.ok())
			return dropped.error().message;
		if (!dropped->kept.empty())
			return "kept " + hex(dropped->kept);
		auto after = kairos::capabilities_of_this_thread();
		if (!after.ok() || !after->effective.empty() || !after->permitted.empty())
			return "a capability is left";
		// What CAP_SYS_NICE allowed before (as root) is refused now.
		if (may_raise_nice())
			return "nice -1 still works";
		if (dropped->before.contains(CAP_SYS_NICE) && errno != EACCES)
			return "nice -1 failed with errno " + std::to_string(errno) + ", not EACCES";
		return "";
	});
	CHECK(failure == "");
}
