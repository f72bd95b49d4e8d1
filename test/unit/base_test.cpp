#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/event_fd.h"
#include "base/io_uring.h"
#include "base/mapping.h"
#include "base/timer_fd.h"

using namespace kairos;

namespace {

bool readable(int fd, int timeout_ms)
{
	pollfd entry{fd, POLLIN, 0};
	return poll(&entry, 1, timeout_ms) == 1 && (entry.revents & POLLIN);
}

Result<uint64_t> doubled(Result<uint64_t> input)
{
	KAIROS_TRY_ASSIGN(value, std::move(input));
	return value * 2;
}

// The VmFlags line of /proc/self/smaps for the mapping that holds
// address, or "" when there is none.
std::string vm_flags_of(const void *address)
{
	std::ifstream smaps("/proc/self/smaps");
	const auto wanted = reinterpret_cast<uintptr_t>(address);
	bool inside = false;
	for (std::string line; std::getline(smaps, line);) {
		uintptr_t start = 0, end = 0;
		char dash = 0;
		std::istringstream range(line);
		if (range >> std::hex >> start >> dash >> end && dash == '-')
			inside = start <= wanted && wanted < end;
		else if (inside && line.rfind("VmFlags:", 0) == 0)
			return line;
	}
	return "";
}

}  // namespace

TEST_CASE("mapping: anonymous memory starts on a 2 MiB boundary, advised for huge pages", "[base]")
{
	// Sizes below, at and past huge-page multiples: each is whole and aligned.
	for (size_t size : {size_t{4096}, size_t{3} << 20, (size_t{64} << 20) + 4096}) {
		auto mapping = Mapping::anonymous(size, "a test");
		REQUIRE(mapping);
		CHECK(reinterpret_cast<uintptr_t>(mapping->data()) % Mapping::kHugePageBytes == 0);
		CHECK(mapping->size() == size);
		std::memset(mapping->data(), 0xa5, size);  // all of it is writable
		CHECK(mapping->data()[size - 1] == 0xa5);
		// VM_HUGEPAGE shows as "hg" where the kernel has THP at all.
		if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0)
			CHECK(vm_flags_of(mapping->data()).find(" hg") != std::string::npos);
		else
			WARN("no transparent huge pages in this kernel: MADV_HUGEPAGE not checked");
	}
}

TEST_CASE("clock: nanoseconds and timespecs convert both ways", "[base]")
{
	CHECK(timespec_to_ns(ns_to_timespec(0)) == 0);
	CHECK(timespec_to_ns(ns_to_timespec(1'999'999'999)) == 1'999'999'999);
	timespec value = ns_to_timespec(3 * kNsPerSecond + 7);
	CHECK(value.tv_sec == 3);
	CHECK(value.tv_nsec == 7);
	// Negative fields (never from the kernel) count as zero.
	CHECK(timespec_to_ns(timespec{-1, 5}) == 5);
	CHECK(timespec_to_ns(timespec{2, -5}) == 2 * kNsPerSecond);
}

TEST_CASE("clock: reads advance and a bad clock is an error", "[base]")
{
	uint64_t first = monotonic_now_ns();
	uint64_t second = monotonic_now_ns();
	CHECK(first > 0);
	CHECK(second >= first);
	CHECK(clock_now_ns(CLOCK_THREAD_CPUTIME_ID) > 0);
	auto bad = clock_read_ns(static_cast<clockid_t>(12345));
	REQUIRE_FALSE(bad.ok());
	CHECK_THAT(bad.error().message, Catch::Contains("clock_gettime"));
	auto good = clock_read_ns(CLOCK_MONOTONIC);
	REQUIRE(good.ok());
	CHECK(*good >= second);
}

TEST_CASE("result: KAIROS_TRY_ASSIGN gives the value or passes the error on", "[base]")
{
	auto ok = doubled(uint64_t{21});
	REQUIRE(ok.ok());
	CHECK(*ok == 42);
	auto failed = doubled(Error{"no value"});
	REQUIRE_FALSE(failed.ok());
	CHECK(failed.error().message == "no value");
}

TEST_CASE("event fd: signals add up and one read consumes them", "[base]")
{
	auto event = EventFd::create(EventFd::Mode::NonBlocking, "a test");
	REQUIRE(event.ok());
	CHECK_FALSE(readable(event->fd(), 0));
	CHECK(event->consume() == 0);  // non-blocking: nothing pending
	event->signal();
	event->signal();
	CHECK(readable(event->fd(), 0));
	CHECK(event->consume() == 2);
	CHECK_FALSE(readable(event->fd(), 0));
}

TEST_CASE("timer fd: an absolute deadline in the past expires at once; nullopt disarms", "[base]")
{
	auto timer = TimerFd::create(TimerFd::Mode::NonBlocking, "a test");
	REQUIRE(timer.ok());
	CHECK(timer->consume() == 0);
	REQUIRE(timer->arm_at(0).ok());  // 0 would disarm: taken as long past
	CHECK(readable(timer->fd(), 1000));
	CHECK(timer->consume() == 1);

	REQUIRE(timer->arm_at(monotonic_now_ns() + 60 * kNsPerSecond).ok());
	REQUIRE(timer->arm_at(std::nullopt).ok());
	CHECK_FALSE(readable(timer->fd(), 20));
}

TEST_CASE("timer fd: periodic expiries count, and a zero period is refused", "[base]")
{
	auto timer = TimerFd::create(TimerFd::Mode::NonBlocking, "the test tick");
	REQUIRE(timer.ok());
	auto zero = timer->arm_periodic(0);
	REQUIRE_FALSE(zero.ok());
	CHECK_THAT(zero.error().message, Catch::Contains("the test tick"));
	REQUIRE(timer->arm_periodic(1'000'000).ok());  // 1 ms
	CHECK(readable(timer->fd(), 1000));
	CHECK(timer->consume() >= 1);
}

TEST_CASE("io_uring: a ring submits and completes, and moves without losing it", "[base]")
{
	auto created = IoUring::create(4, "a test", {IORING_OP_NOP});
	REQUIRE(created.ok());
	IoUring ring = std::move(*created);
	io_uring_sqe *sqe = io_uring_get_sqe(ring.get());
	REQUIRE(sqe != nullptr);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, 77);
	REQUIRE(io_uring_submit(ring.get()) == 1);
	io_uring_cqe *cqe = nullptr;
	REQUIRE(io_uring_wait_cqe(ring.get(), &cqe) == 0);
	CHECK(io_uring_cqe_get_data64(cqe) == 77);
	CHECK(cqe->res == 0);
	io_uring_cqe_seen(ring.get(), cqe);
}

TEST_CASE("io_uring: poll_add tags a one-shot poll, and a full queue is handed over first", "[base]")
{
	auto created = IoUring::create(2, "a test", {IORING_OP_POLL_ADD});
	REQUIRE(created.ok());
	const IoUring ring = std::move(*created);
	auto events = EventFd::create(EventFd::Mode::NonBlocking, "a test");
	REQUIRE(events.ok());
	// Three polls in a two-entry queue: the third makes room by submitting.
	for (uint64_t tag : {11, 12, 13})
		REQUIRE(ring.poll_add(events->fd(), POLLIN, tag));
	REQUIRE(io_uring_submit(ring.get()) >= 0);
	events->signal();
	std::vector<uint64_t> tags;
	while (tags.size() < 3) {
		io_uring_cqe *cqe = nullptr;
		REQUIRE(io_uring_wait_cqe(ring.get(), &cqe) == 0);
		CHECK((cqe->res & POLLIN) != 0);
		tags.push_back(io_uring_cqe_get_data64(cqe));
		io_uring_cqe_seen(ring.get(), cqe);
	}
	std::sort(tags.begin(), tags.end());
	CHECK(tags == std::vector<uint64_t>{11, 12, 13});
}

TEST_CASE("io_uring: a ring refuses the opcodes, SQE flags and registrations it was not made for", "[base]")
{
	auto created = IoUring::create(4, "a test", {IORING_OP_NOP});
	REQUIRE(created.ok());
	io_uring *ring = created->get();
	// An open through the ring would bypass a seccomp filter without openat.
	const auto submit_one = [ring](auto &&prepare) {
		io_uring_sqe *sqe = io_uring_get_sqe(ring);
		REQUIRE(sqe != nullptr);
		prepare(sqe);
		REQUIRE(io_uring_submit(ring) == 1);
		io_uring_cqe *cqe = nullptr;
		REQUIRE(io_uring_wait_cqe(ring, &cqe) == 0);
		const int result = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		return result;
	};
	CHECK(submit_one([](io_uring_sqe *sqe) {
		      io_uring_prep_openat(sqe, AT_FDCWD, "/etc/hostname", O_RDONLY, 0);
	      }) == -EACCES);
	CHECK(submit_one([](io_uring_sqe *sqe) {
		      io_uring_prep_nop(sqe);
		      io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
	      }) == -EACCES);
	CHECK(submit_one([](io_uring_sqe *sqe) { io_uring_prep_nop(sqe); }) == 0);
	int fd = 0;
	CHECK(io_uring_register_files(ring, &fd, 1) == -EACCES);
}
