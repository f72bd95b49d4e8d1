// Confinement (issue 12, after Firecracker's seccomp model): after setup,
// each thread of `kairos run` installs on itself a seccomp allow-list of the
// system calls its kind makes at run time, before it serves the guest. A
// call outside it stops the process with one line naming the call and the
// thread, and kExitForbiddenSyscall. The lists, and how they were measured,
// are in confinement.cpp and docs/SECURITY.md. Before any of them, the
// process gives up the capabilities the run does not need.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/capabilities.h"
#include "base/seccomp.h"
#include "vmm/config.h"

namespace kairos::vmm {

// Process exit code after a forbidden system call (kairos --help, README).
inline constexpr int kExitForbiddenSyscall = 6;

// Each kind has its own list. Main is the event loop; Device a virtio
// device's thread (vmm/virtio_devices.h).
enum class ThreadKind { Main, Vcpu, Timer, Device };

// The system calls a thread of this kind may make once confined.
std::span<const char *const> allowed_syscalls(ThreadKind kind);
// The ioctl requests it may make, if its list has ioctl (none: the timer
// thread). build_filter says on which descriptors.
std::span<const unsigned long> allowed_ioctls(ThreadKind kind);

// The KVM descriptors confined threads aim their ioctls at: the VM's, and
// each vCPU's by its index.
struct KvmDescriptors {
	int vm = -1;
	std::vector<int> vcpus;
};

// The filter of a thread of this kind (for a vCPU thread, of vCPU vcpu):
// allowed_syscalls(kind), and allowed_ioctls(kind) with KVM's requests on
// their own descriptors only (a vCPU's on its own fd, KVM_IRQ_LINE on the
// VM's), the terminal's and the devices' on any. An error for a vCPU
// index kvm does not have, or what libseccomp refuses.
Result<SeccompFilter> build_filter(ThreadKind kind, const KvmDescriptors &kvm, size_t vcpu = 0);

// The timer thread's filter: allowed_syscalls(ThreadKind::Timer), with
// KVM_IRQ_LINE on the VM's fd vm only (the upcall of an expiry) and
// sched_setattr on the vCPU threads vcpu_threads (ids) only; build_filter's
// for the timer kind names no thread.
Result<SeccompFilter> build_timer_filter(int vm, std::span<const uint32_t> vcpu_threads);

// The capabilities a run with this config uses after setup: CAP_SYS_NICE
// when the timer service raises a priority (outsourcing.priority nice:-N
// or fifo:N, which the timer thread sets on itself as it starts, or
// priority windows, which it sets on vCPU threads), nothing otherwise.
// Setup (KVM, memory, files) needs none beyond what opens /dev/kvm.
CapabilitySet capabilities_needed(const Config &config);

// How many of this process's descriptors refer to the device at
// device_path ("/dev/kvm"): each number below /proc/self/status's FDSize
// (the descriptor table's size) is fstat'ed and its device compared. Only
// calls every seccomp list allows, so it works at the stop. An error when
// device_path or /proc cannot be read.
Result<size_t> count_descriptors_of_device(const std::string &device_path);

// TEST ONLY: KAIROS_TEST_SECCOMP_VIOLATION=vcpu|timer|loop|device makes that
// thread call getpgrp(2), which no list allows, right after it is
// confined: the guest tests' proof that the filter holds on every kind.
// vcpu-ioctl makes a vCPU thread ask for KVM_CREATE_VCPU, a VM ioctl off
// its ioctl list. Nothing else reads this variable. Empty: unset; an
// error names it.
inline constexpr const char *kTestViolationVariable = "KAIROS_TEST_SECCOMP_VIOLATION";
struct TestViolation {
	ThreadKind kind;
	bool vm_ioctl = false;  // KVM_CREATE_VCPU rather than getpgrp

	bool operator==(const TestViolation &) const = default;
};
Result<std::optional<TestViolation>> parse_test_violation(const char *value);

// What a run's confinement was, for --stats (Machine::run fills it).
struct ConfinementRecord {
	CapabilitySet needed;         // capabilities_needed(config)
	CapabilityDrop capabilities;  // what prepare() kept, and had before
	// Every thread's, read by the main thread once the others had started.
	Result<ProcessCapabilities> threads_at_start{Error{"read before the threads started"}};
};

class Confinement {
public:
	// At the end of setup, before any other thread exists (they inherit
	// what it leaves): sets no_new_privs, drops every capability but
	// capabilities_needed(config) (capabilities.h says from which sets),
	// and with security.seccomp compiles the filters (build_filter: the
	// loop's, the devices', one per vCPU, with kvm's descriptors; the
	// timer thread's waits for enter_timer) and installs the SIGSYS reporter; without it, enter() is a no-op. Errors name the
	// step that failed.
	static Result<Confinement> prepare(const Config &config, const KvmDescriptors &kvm);

	// On the calling thread, before it serves the guest. label names it in
	// the violation report ("kairos-vcpu0"). A vCPU thread calls
	// enter_vcpu with its index instead, the timer thread enter_timer with
	// the vCPU threads' ids (enter refuses those two kinds).
	Status enter(ThreadKind kind, std::string_view label) const;
	Status enter_vcpu(size_t index, std::string_view label) const;
	Status enter_timer(std::span<const uint32_t> vcpu_threads, std::string_view label) const;

	// What prepare() did, for --stats; threads_at_start still unread.
	ConfinementRecord record() const { return {needed_, capabilities_}; }

private:
	Confinement() = default;
	Status install(const std::optional<SeccompFilter> &filter, ThreadKind kind, std::string_view label) const;

	std::optional<SeccompFilter> main_;
	std::vector<SeccompFilter> vcpus_;  // by vCPU index
	std::optional<SeccompFilter> device_;
	std::optional<TestViolation> test_violation_;
	CapabilitySet needed_;
	CapabilityDrop capabilities_{};
	int vm_ = -1;  // the VM's fd, for the timer thread's filter
};

}  // namespace kairos::vmm
