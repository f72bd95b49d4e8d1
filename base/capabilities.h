// Capabilities after setup (capabilities(7)): the process keeps only those
// it needs at run time. Linux keeps the sets per thread and a new thread
// copies its creator's, so a drop before any other thread exists is a drop
// for every thread. Built on libcap (the kernel's capset ABI has versions
// and a two-word layout; libcap hides both).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace kairos {

// A set of capabilities as the kernel's mask: bit N is capability N
// (<linux/capability.h>, CAP_SYS_NICE is 23), as /proc/PID/status shows it.
class CapabilitySet {
public:
	CapabilitySet() = default;
	static CapabilitySet of(std::initializer_list<int> capabilities);
	static CapabilitySet from_mask(uint64_t mask) { return CapabilitySet(mask); }

	bool contains(int capability) const;
	void add(int capability);
	bool empty() const { return mask_ == 0; }
	uint64_t mask() const { return mask_; }
	// Lowest number first, as libcap spells them ("cap_sys_nice").
	std::vector<std::string> names() const;

	CapabilitySet operator&(CapabilitySet other) const { return CapabilitySet(mask_ & other.mask_); }
	CapabilitySet operator|(CapabilitySet other) const { return CapabilitySet(mask_ | other.mask_); }
	bool operator==(const CapabilitySet &) const = default;

private:
	explicit CapabilitySet(uint64_t mask) : mask_(mask) {}
	uint64_t mask_ = 0;
};

// One thread's five sets, the Cap* fields of /proc/PID/status.
struct ThreadCapabilities {
	CapabilitySet inheritable;  // CapInh
	CapabilitySet permitted;    // CapPrm
	CapabilitySet effective;    // CapEff
	CapabilitySet bounding;     // CapBnd
	CapabilitySet ambient;      // CapAmb
};

// Parses the Cap* fields of a /proc/PID/status text; an error names the
// first that is missing or not hexadecimal.
Result<ThreadCapabilities> capabilities_from_status(std::string_view status);
// The calling thread's sets (/proc/thread-self/status); an error when
// /proc cannot be read.
Result<ThreadCapabilities> capabilities_of_this_thread();

// Every thread of this process at one moment.
struct ProcessCapabilities {
	size_t threads = 0;
	CapabilitySet permitted;  // the union over them; effective is within it
};
// Reads /proc/self/task/*/status; a thread that ends meanwhile is skipped.
// An error when the task folder cannot be listed. Lists a folder: needs
// getdents64, which no thread's seccomp list allows.
Result<ProcessCapabilities> capabilities_of_every_thread();

// What drop_capabilities_except did.
struct CapabilityDrop {
	CapabilitySet kept;             // effective and permitted now
	CapabilitySet before;           // permitted before
	bool bounding_dropped = false;  // false without CAP_SETPCAP (then it stays)
};

// On the calling thread: permitted and effective become keep ∩ permitted,
// inheritable empty (and with it ambient, which the kernel keeps within
// permitted ∩ inheritable), and, when the thread holds CAP_SETPCAP, the
// bounding set becomes keep. Threads created afterwards inherit all of it;
// threads that exist already keep theirs. Errors name the libcap call and
// its errno (EPERM from a capset a security module refuses).
Result<CapabilityDrop> drop_capabilities_except(CapabilitySet keep);

}  // namespace kairos
