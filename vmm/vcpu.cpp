#include "vmm/vcpu.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "base/clock.h"
#include "base/error.h"
#include "pvclock/host_clock.h"
#include "vmm/layout.h"
#include "vmm/vcpu_exit.h"

namespace kairos::vmm {
namespace {

// Control register and EFER bits (SDM vol. 3A 2.5, 2.2.1).
constexpr uint64_t kCr0ProtectionEnable = 1ULL << 0;
constexpr uint64_t kCr0ExtensionType = 1ULL << 4;
constexpr uint64_t kCr0Paging = 1ULL << 31;
constexpr uint64_t kCr4Pae = 1ULL << 5;
constexpr uint64_t kEferLme = 1ULL << 8;
constexpr uint64_t kEferLma = 1ULL << 10;
constexpr uint32_t kMsrMiscEnable = 0x1a0;
constexpr uint64_t kMiscEnableFastStrings = 1;
// LAPIC local vector table (SDM vol. 3A 10.5.1).
constexpr size_t kApicLvtLint0 = 0x350;
constexpr size_t kApicLvtLint1 = 0x360;
constexpr uint32_t kDeliveryExtInt = 7 << 8;
constexpr uint32_t kDeliveryNmi = 4 << 8;

void on_kick(int) {}

kvm_segment segment_from_gdt(uint64_t descriptor, uint16_t selector)
{
	kvm_segment segment{};
	segment.base = ((descriptor >> 16) & 0xffffff) | ((descriptor >> 32) & 0xff000000);
	uint32_t limit = static_cast<uint32_t>((descriptor & 0xffff) | ((descriptor >> 32) & 0xf0000));
	segment.g = (descriptor >> 55) & 1;
	segment.limit = segment.g ? (limit << 12) | 0xfff : limit;
	segment.selector = selector;
	segment.type = (descriptor >> 40) & 0xf;
	segment.s = (descriptor >> 44) & 1;
	segment.dpl = (descriptor >> 45) & 3;
	segment.present = (descriptor >> 47) & 1;
	segment.avl = (descriptor >> 52) & 1;
	segment.l = (descriptor >> 53) & 1;
	segment.db = (descriptor >> 54) & 1;
	segment.unusable = segment.present ? 0 : 1;
	return segment;
}

void set_lvt(kvm_lapic_state &lapic, size_t offset, uint32_t delivery_mode)
{
	uint32_t value;
	std::memcpy(&value, lapic.regs + offset, 4);
	value = (value & ~0x700u) | delivery_mode;
	std::memcpy(lapic.regs + offset, &value, 4);
}

}  // namespace

int vcpu_kick_signal()
{
	return SIGRTMIN;
}

Status install_vcpu_kick_handler()
{
	struct sigaction action {};
	action.sa_handler = on_kick;
	sigemptyset(&action.sa_mask);
	// No SA_RESTART: KVM_RUN must return EINTR.
	if (sigaction(vcpu_kick_signal(), &action, nullptr) != 0)
		return errno_error("sigaction for the vCPU kick signal");
	return {};
}

Status Vcpu::configure(const std::vector<kvm_cpuid_entry2> &cpuid)
{
	KAIROS_TRY(fd_.set_cpuid(cpuid));

	kvm_fpu fpu{};
	fpu.fcw = 0x37f;     // FNINIT state
	fpu.mxcsr = 0x1f80;  // all SSE exceptions masked
	KAIROS_TRY(fd_.set_fpu(fpu));

	kvm_msr_entry misc{};
	misc.index = kMsrMiscEnable;
	misc.data = kMiscEnableFastStrings;
	KAIROS_TRY(fd_.set_msrs({misc}));

	// Virtual-wire mode, matching the MP table's local interrupt entries.
	kvm_lapic_state lapic{};
	KAIROS_TRY(fd_.get_lapic(&lapic));
	set_lvt(lapic, kApicLvtLint0, kDeliveryExtInt);
	set_lvt(lapic, kApicLvtLint1, kDeliveryNmi);
	return fd_.set_lapic(lapic);
}

namespace {

// Long mode at the bzImage's 64-bit entry (boot.rst "64-bit BOOT PROTOCOL"):
// paging on through the identity tables, flat 64-bit code.
void enter_long_mode(kvm_sregs &sregs, const std::vector<uint64_t> &gdt)
{
	sregs.cs = segment_from_gdt(gdt[kBootCodeSelector / 8], kBootCodeSelector);
	sregs.cr0 = kCr0ProtectionEnable | kCr0ExtensionType | kCr0Paging;
	sregs.cr3 = layout::kPml4Addr;
	sregs.cr4 = kCr4Pae;
	sregs.efer = kEferLme | kEferLma;
}

// The PVH entry (Xen's pvh.pandoc): 32-bit protected mode, paging off,
// flat 4 GiB segments, CR0.PE alone of the CR0 bits it names, CR4 clear.
void enter_pvh(kvm_sregs &sregs, const std::vector<uint64_t> &gdt)
{
	sregs.cs = segment_from_gdt(gdt[kPvhCodeSelector / 8], kPvhCodeSelector);
	sregs.cr0 = kCr0ProtectionEnable;
	sregs.cr3 = 0;
	sregs.cr4 = 0;
	sregs.efer = 0;
}

}  // namespace

Status Vcpu::set_boot_state(const BootEntry &entry)
{
	kvm_sregs sregs{};
	KAIROS_TRY(fd_.get_sregs(&sregs));
	auto gdt = boot_gdt_entries();
	sregs.gdt.base = layout::kGdtAddr;
	sregs.gdt.limit = static_cast<uint16_t>(gdt.size() * 8 - 1);
	sregs.idt.base = layout::kIdtAddr;
	sregs.idt.limit = 7;
	kvm_segment data = segment_from_gdt(gdt[kBootDataSelector / 8], kBootDataSelector);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = segment_from_gdt(gdt[kBootTssSelector / 8], kBootTssSelector);
	if (entry.mode == EntryMode::Pvh32)
		enter_pvh(sregs, gdt);
	else
		enter_long_mode(sregs, gdt);
	KAIROS_TRY(fd_.set_sregs(sregs));

	kvm_regs regs{};
	regs.rflags = 0x2;  // bit 1 is reserved and always set; IF, TF and VM clear
	regs.rip = entry.entry_point;
	if (entry.mode == EntryMode::Pvh32)
		regs.rbx = entry.zero_page;
	else
		regs.rsi = entry.zero_page;
	regs.rsp = regs.rbp = layout::kBootStackTop;
	return fd_.set_regs(regs);
}

void Vcpu::start(const Confinement &confinement)
{
	thread_ = std::thread([this, &confinement] { run_loop(confinement); });
}

void Vcpu::kick()
{
	// A joined thread has no handle left to signal.
	if (!thread_.joinable())
		return;
	// immediate_exit covers a kick that lands just before KVM_RUN starts.
	fd_.run()->immediate_exit = 1;
	pthread_kill(thread_.native_handle(), vcpu_kick_signal());
	// A vCPU waiting at the closed gate looks at the shutdown again.
	gate_.wake();
}

void Vcpu::join()
{
	if (thread_.joinable())
		thread_.join();
}

void Vcpu::run_loop(const Confinement &confinement)
{
	// Named, so tools (top -H, chrt -p, the benchmark) can find vCPU threads.
	pthread_setname_np(pthread_self(), fmt::format("kairos-vcpu{}", id_).c_str());
	clockid_t clock{};
	if (pthread_getcpuclockid(pthread_self(), &clock) == 0)
		cpu_clock_.store(clock);
	// Last: whoever sees the thread id sees the clock too.
	thread_id_ = static_cast<uint64_t>(syscall(SYS_gettid));
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, vcpu_kick_signal());
	pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);

	// Before the first guest instruction: nothing the guest drives runs
	// unconfined on this thread.
	Status confined = confinement.enter_vcpu(id_, fmt::format("kairos-vcpu{}", id_));
	if (confined)
		run_guest();
	else
		shutdown_.request(StopReason::HostError, confined.error().message);
	// The thread's own accounts, read while it still exists (--stats).
	final_cpu_ns_.store(clock_now_ns(CLOCK_THREAD_CPUTIME_ID));
	final_run_delay_ns_.store(pvclock::thread_run_delay_ns(thread_id_.load()));
	final_preemptions_.store(pvclock::thread_involuntary_switches(thread_id_.load()));
}

void Vcpu::run_guest()
{
	while (!shutdown_.requested()) {
		if (gate_.pass(shutdown_))
			continue;  // paused until now: look at the stop again first
		int error = fd_.run_once();
		if (error == EINTR || error == EAGAIN) {
			// A kick for a pause leaves immediate_exit set, and KVM_RUN
			// would return at once for ever after the resume. Cleared
			// before the loop looks at the stop (the fence keeps the
			// order), so a stop's kick is seen in the flag or there.
			fd_.run()->immediate_exit = 0;
			std::atomic_thread_fence(std::memory_order_seq_cst);
			continue;
		}
		if (error != 0) {
			shutdown_.request(StopReason::HostError,
					  errno_error(fmt::format("KVM_RUN on vCPU {}", id_), error).message);
			return;
		}
		exits_.fetch_add(1, std::memory_order_relaxed);
		if (auto stop = handle_vcpu_exit(*fd_.run(), id_, pio_, mmio_)) {
			if (stop_wants_vcpu_state(stop->reason))
				report_state();
			shutdown_.request(stop->reason, std::move(stop->detail));
			return;
		}
	}
}

void Vcpu::report_state() const
{
	kvm_regs regs{};
	kvm_sregs sregs{};
	if (!fd_.get_regs(&regs).ok() || !fd_.get_sregs(&sregs).ok())
		return;
	// An error: it comes with the stop, so --log-level error still shows it.
	std::string state = describe_vcpu_state(id_, regs, sregs, read_code(regs, sregs));
	if (state.ends_with('\n'))
		state.pop_back();
	log_.write(LogLevel::Error, state);
}

// 16 bytes on each side of RIP, within RIP's page: the next page may not be
// mapped, and one translation is all a failing guest should cost.
std::optional<CodeBytes> Vcpu::read_code(const kvm_regs &regs, const kvm_sregs &sregs) const
{
	constexpr uint64_t kSide = 16;
	constexpr uint64_t kPage = 4096;
	auto gpa = fd_.translate(sregs.cs.base + regs.rip);
	if (!gpa)
		return std::nullopt;
	uint64_t in_page = *gpa % kPage;
	uint64_t before = std::min(kSide, in_page);
	uint64_t after = std::min(kSide, kPage - in_page);
	CodeBytes code;
	code.bytes.resize(before + after);
	code.rip_index = before;
	if (!memory_.read_bytes(*gpa - before, code.bytes).ok())
		return std::nullopt;
	return code;
}

Result<uint32_t> guest_tsc_khz(const VmFd &vm, const std::vector<std::unique_ptr<Vcpu>> &vcpus)
{
	if (vm.check_extension(KVM_CAP_VM_TSC_CONTROL) > 0)
		return vm.tsc_khz();
	if (vcpus.empty())
		return make_error("the guest's TSC rate: no vCPU to ask");
	return vcpus.front()->tsc_khz();
}

}  // namespace kairos::vmm
