// The guest loader: everything a boot writes into guest memory before the
// first vCPU runs (Firecracker's arch::load_kernel plus its firmware
// tables). The kernel, initrd and command line (Linux x86 boot protocol,
// Documentation/arch/x86/boot.rst), the MP table for acpi=off guests, the
// ACPI tables, and the reset stub. No KVM: unit-tested on plain memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/boot.h"
#include "vmm/config.h"
#include "vmm/guest_memory.h"

namespace kairos::vmm {

// The command line the guest gets: boot.cmdline, plus " tsc_early_khz=N"
// when kvm-clock is off (the guest would otherwise calibrate its TSC
// against the PIT, which stalls where port I/O is slow, as in nested
// virtualization), unless the user set it or the rate is unknown.
std::string guest_cmdline(const Config &config, std::optional<uint32_t> tsc_khz);

// What guest_cmdline adds to boot.cmdline (" tsc_early_khz=N"), or "".
std::string cmdline_additions(const Config &config, std::optional<uint32_t> tsc_khz);

// A TSC rate as long as any host's when written out (7 digits of kHz):
// `check`, which has no KVM to ask, counts the addition with it.
inline constexpr uint32_t kLongestTscKhz = 9'999'999;

// A guest loaded into its memory before KVM exists, so `kairos run` reads
// and copies the kernel once (a 60+ MiB vmlinux takes seconds to copy in a
// nested machine) and still reports an image error as a config error.
struct PreparedGuest {
	GuestMemory memory;
	BootEntry entry;
};

// Creates the guest memory (reserved, committed only where written) and
// loads the guest into it. The command line gets the longest addition
// Kairos may make (kLongestTscKhz), so a line that fits here fits at run
// time; Machine replaces it with the real one (finish_guest_cmdline).
// Errors name the key, as load_guest's do.
Result<PreparedGuest> prepare_guest(const Config &config);

// Everything load_guest would find wrong, without KVM: prepare_guest into
// a memory that is thrown away (`kairos check`).
Status check_guest(const Config &config);

// Once KVM gives the guest's TSC rate: writes the command line with the
// real addition over the one prepare_guest wrote, if Kairos adds anything
// (clock.kvmclock false). No-op otherwise.
Status finish_guest_cmdline(const GuestMemory &memory, const Config &config, std::optional<uint32_t> tsc_khz);

// How boot.kernel boots, for `check` to say ("bzImage (64-bit entry)" or
// "ELF vmlinux (PVH entry)"); call it once check_guest accepted the image.
std::string kernel_format(const Config &config);

// Reads boot.kernel and boot.initrd and loads the guest: errors name the
// key and the file ("boot.kernel /x: not a bzImage: ..."). An ELF image
// boots through its PVH entry (vmm/pvh.h), anything else as a bzImage.
// Returns where the boot vCPU enters.
Result<BootEntry> load_guest(const GuestMemory &memory, const Config &config, std::optional<uint32_t> tsc_khz);

}  // namespace kairos::vmm
