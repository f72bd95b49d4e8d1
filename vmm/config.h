// The VM configuration file (JSON). Every key is checked before any KVM call:
// unknown keys, wrong types, out-of-range values and missing files are
// errors naming the key's full path ("machine.vcpus: must be 1..64, got 0").
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "abi/kairos_abi.h"
#include "base/result.h"
#include "outsourcing/priority.h"
#include "outsourcing/wakeup_limiter.h"
#include "outsourcing/window.h"
#include "vmm/layout.h"

namespace kairos::vmm {

// The shared-info page has a time slot per vCPU (kairos_abi.h).
inline constexpr uint32_t kMaxVcpus = KAIROS_MAX_VCPUS;
inline constexpr uint64_t kMinMemoryMib = 64;
// What each vCPU past the first adds to kMinMemoryMib, at least: the guest
// kernel's per-CPU areas (Debian 6.1's static ones are 212 KiB a CPU,
// .data..percpu), its idle, IRQ and exception stacks, TSS and GDT, before
// the allocators' per-CPU caches. A floor with margin, not a promise.
inline constexpr uint64_t kMemoryMibPerExtraVcpu = 1;
inline constexpr uint64_t kMaxMemoryMib = 64 * 1024;
inline constexpr uint32_t kMinRefreshMs = 10;
inline constexpr uint32_t kMaxRefreshMs = 60000;
inline constexpr uint32_t kMaxVirtualTimerHz = 10000;
// outsourcing.window bounds, in us.
inline constexpr uint64_t kMinWindowPeriodUs = 100;
inline constexpr uint64_t kMaxWindowPeriodUs = 4'000'000;
inline constexpr uint64_t kMinWindowRuntimeUs = 10;
inline constexpr uint64_t kMaxWindowLeadUs = 100'000;
inline constexpr uint64_t kMinWindowTimeoutUs = 100;
inline constexpr uint64_t kMaxWindowTimeoutUs = 1'000'000;
// console.max_file_mib: a guest printing for ever must not fill the host's
// disk (issue 12); a boot log is well under a MiB.
inline constexpr uint64_t kDefaultConsoleFileMib = 64;
inline constexpr uint64_t kMaxConsoleFileMib = 1024 * 1024;
// drives: one virtio-mmio slot each (vmm/layout.h); an id is what the
// guest reads with VIRTIO_BLK_T_GET_ID, 20 bytes at most (virtio 1.2 5.2.6).
inline constexpr uint32_t kMaxDrives = layout::kVirtioMmioSlots;
inline constexpr size_t kMaxDriveIdBytes = 20;
// network[].tap: an interface name, IFNAMSIZ (16) with its NUL.
inline constexpr size_t kMaxTapNameBytes = 15;
// vsock.cid: 0-2 are the hypervisor, local and host addresses, and
// 0xffffffff is VMADDR_CID_ANY (linux/vm_sockets.h).
inline constexpr uint64_t kMinGuestCid = 3;
inline constexpr uint64_t kMaxGuestCid = 0xfffffffe;
inline constexpr const char *kDefaultCmdline = "console=ttyS0 reboot=k panic=-1 pci=off";

struct Config {
	struct Machine {
		uint32_t vcpus = 1;
		uint64_t memory_mib = 256;
		// memory_mib against what the host can give (vmm/host_memory.h).
		enum class MemoryCheck { Warn, Refuse, Off } memory_check = MemoryCheck::Warn;
	} machine;
	struct Boot {
		std::filesystem::path kernel;
		std::filesystem::path initrd;  // empty: none
		std::string cmdline = kDefaultCmdline;
	} boot;
	struct Console {
		// Guest serial output: to stdout, to a file, or dropped.
		enum class Output { Stdout, File, None } output = Output::Stdout;
		std::filesystem::path file;
		uint64_t max_file_mib = kDefaultConsoleFileMib;  // beyond it, output is dropped and counted
		bool input_from_stdin = true;
	} console;
	struct Clock {
		bool kvmclock = true;        // advertise KVM's paravirtual clock
		bool kairos = true;          // the Kairos device: CPUID leaves, shared info, events
		uint32_t refresh_ms = 1000;  // how often host time is re-published
	} clock;
	struct Outsourcing {
		bool enabled = true;                     // accept a guest's VMRPC ring (needs clock.kairos)
		uint64_t max_timers = 65536;             // per-VM quota of armed timers
		kairos::outsourcing::Priority priority;  // timer thread: normal, nice:-N or fifo:N
		// Priority windows for the vCPUs that run timer work (DESIGN.md 5).
		kairos::outsourcing::WindowConfig window;
		// Fire this early, the guest waits to the deadline; nullopt: learned.
		std::optional<uint64_t> advance_ns;
		// Timer-thread passes per second the guest's port writes may cause.
		uint64_t guest_wakeups_hz = kairos::outsourcing::kDefaultGuestWakeupsHz;
	} outsourcing;
	struct Events {
		uint32_t virtual_timer_hz = 0;  // periodic virtual timer event; 0 = off
	} events;
	// A virtio-blk device on a raw image; the n-th drive is virtio-mmio
	// slot n, /dev/vda, /dev/vdb... in the guest in that order.
	struct Drive {
		std::string id;
		std::filesystem::path path;
		bool read_only = false;
		// None: O_DIRECT, the host's page cache is bypassed.
		enum class Cache { None, Writeback } cache = Cache::Writeback;
	};
	std::vector<Drive> drives;
	// A virtio-net device on a host TAP interface (IFF_TAP | IFF_NO_PI |
	// IFF_VNET_HDR); its slot follows the drives'.
	struct Network {
		std::string id;
		std::string tap;                            // the interface's name
		std::optional<std::array<uint8_t, 6>> mac;  // nullopt: generated at start
	};
	std::vector<Network> network;
	// A virtio-vsock device on the kernel's vhost-vsock; its slot is last.
	struct Vsock {
		uint32_t cid = 0;  // the guest's context id, kMinGuestCid..kMaxGuestCid
	};
	std::optional<Vsock> vsock;
	// Drives, network devices and vsock: the virtio-mmio slots in use.
	uint32_t virtio_device_count() const
	{
		return static_cast<uint32_t>(drives.size() + network.size() + (vsock ? 1 : 0));
	}
	struct Security {
		// Per-thread seccomp allow-lists after setup (vmm/confinement.h).
		bool seccomp = true;
	} security;
};

// Settings given on the command line (kairos run --kernel K ...), as QEMU
// and kvmtool take them. Each one given wins over the config file's key
// (kConfigFlags pairs them). Paths are relative to the current directory,
// where a config file's are relative to the file's.
struct ConfigFlags {
	std::optional<std::string> kernel;   // --kernel: boot.kernel
	std::optional<std::string> initrd;   // --initrd: boot.initrd
	std::optional<std::string> cmdline;  // --append: boot.cmdline, the whole command line
	std::optional<int64_t> vcpus;        // --cpus: machine.vcpus
	std::optional<int64_t> memory_mib;   // --memory: machine.memory_mib

	// Whether the flag of `key` (a kConfigFlags key) was given.
	bool sets(std::string_view key) const;
};

// Which flag sets which key (for errors, --help and the README).
struct ConfigFlag {
	const char *flag;
	const char *key;
};
inline constexpr ConfigFlag kConfigFlags[] = {{"--kernel", "boot.kernel"},
					      {"--initrd", "boot.initrd"},
					      {"--append", "boot.cmdline"},
					      {"--cpus", "machine.vcpus"},
					      {"--memory", "machine.memory_mib"}};

// Parses JSON text; relative paths resolve against base_dir.
Result<Config> parse_config(const std::string &json_text, const std::filesystem::path &base_dir);
// Reads and parses a config file; errors start with the file name.
Result<Config> load_config(const std::filesystem::path &file);
// The config file's settings (without a file: the defaults), the flags on
// top, checked as one config. An error about a value a flag gave names the
// flag ("--cpus: must be 1..64, got 0"); any other starts with the file's
// name.
Result<Config> load_config(const std::optional<std::filesystem::path> &file, const ConfigFlags &flags);
// `message` told in the flag's name when it is about a key a flag set
// ("boot.kernel /k: not a bzImage" -> "--kernel /k: not a bzImage"), for
// what is found after loading (preflight, host memory); else unchanged.
std::string name_flag_in(const std::string &message, const ConfigFlags &flags);

// The config file that describes `config`, every key with its value
// (paths absolute), as `kairos check` prints it: parse_config reads it
// back to the same Config.
std::string config_to_json(const Config &config);

}  // namespace kairos::vmm
