#include "vmm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "base/error.h"

namespace kairos::vmm {
namespace {

// The hardware behind /dev/kvm: without vmx/svm KVM falls back to emulating
// guest ring 0, far too slow to boot Linux (see scripts/with-kvm).
bool cpu_has_hardware_virtualization()
{
	std::ifstream cpuinfo("/proc/cpuinfo");
	std::string line;
	while (std::getline(cpuinfo, line)) {
		if (line.rfind("flags", 0) != 0)
			continue;
		line += ' ';
		return line.find(" vmx ") != std::string::npos || line.find(" svm ") != std::string::npos;
	}
	return false;
}

// linux-libc-dev declares kvm_cpuid2 and kvm_msrs with __DECLARE_FLEX_ARRAY,
// whose empty struct takes a byte in C++: sizeof becomes 12, not 8, so the
// ioctl numbers encode the wrong size and `entries` sits at the wrong
// offset. These ioctls are therefore built here with the kernel's C layout:
// an 8-byte header {count, padding} followed directly by the entries.
struct FlexArrayHeader {
	uint32_t count;
	uint32_t padding;
};
static_assert(sizeof(FlexArrayHeader) == 8);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, FlexArrayHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, FlexArrayHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, FlexArrayHeader);

// A header-plus-entries buffer in the kernel's layout.
template <typename Entry>
class FlexArray {
public:
	explicit FlexArray(size_t count) : bytes_(sizeof(FlexArrayHeader) + count * sizeof(Entry), 0)
	{
		header()->count = static_cast<uint32_t>(count);
	}
	FlexArrayHeader *header() { return reinterpret_cast<FlexArrayHeader *>(bytes_.data()); }
	void *data() { return bytes_.data(); }
	Entry entry(size_t i) const
	{
		Entry value;
		std::memcpy(&value, bytes_.data() + sizeof(FlexArrayHeader) + i * sizeof(Entry), sizeof(Entry));
		return value;
	}
	void set_entry(size_t i, const Entry &value)
	{
		std::memcpy(bytes_.data() + sizeof(FlexArrayHeader) + i * sizeof(Entry), &value, sizeof(Entry));
	}

private:
	std::vector<uint8_t> bytes_;
};

template <typename Arg>
Status checked_ioctl(int fd, unsigned long request, Arg arg, const std::string &what)
{
	if (ioctl(fd, request, arg) < 0)
		return errno_error(what);
	return {};
}

}  // namespace

std::string kvm_unusable_reason(const std::string &device_path)
{
	if (access(device_path.c_str(), F_OK) != 0)
		return fmt::format("{} does not exist (is the kvm module loaded?); run inside "
				   "scripts/with-kvm to get an emulated hardware-assisted KVM",
				   device_path);
	if (access(device_path.c_str(), R_OK | W_OK) != 0)
		return fmt::format("{} is not accessible to this user (add yourself to group kvm)", device_path);
	if (!cpu_has_hardware_virtualization() && !std::getenv("KAIROS_ALLOW_SOFTWARE_KVM"))
		return fmt::format("{} has no hardware virtualization behind it (no vmx/svm in "
				   "/proc/cpuinfo), so guests would crawl; run under scripts/with-kvm "
				   "(or set KAIROS_ALLOW_SOFTWARE_KVM=1 to try anyway)",
				   device_path);
	return {};
}

// --- Kvm ---------------------------------------------------------------------------

Result<Kvm> Kvm::open(const std::string &device_path)
{
	UniqueFd fd(::open(device_path.c_str(), O_RDWR | O_CLOEXEC));
	if (!fd)
		return errno_error("open " + device_path);
	int version = ioctl(fd.get(), KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		return make_error("{}: KVM API version {} (need {})", device_path, version, KVM_API_VERSION);
	int run_size = ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0)
		return errno_error("KVM_GET_VCPU_MMAP_SIZE");
	return Kvm(std::move(fd), run_size);
}

Result<VmFd> Kvm::create_vm() const
{
	int fd = -1;
	// KVM_CREATE_VM can fail with EINTR while the kernel sets up the MMU.
	do {
		fd = ioctl(fd_.get(), KVM_CREATE_VM, 0);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno_error("KVM_CREATE_VM");
	return VmFd(UniqueFd(fd), run_size_);
}

Result<std::vector<kvm_cpuid_entry2>> Kvm::supported_cpuid() const
{
	constexpr size_t kMaxEntries = 256;  // KVM_MAX_CPUID_ENTRIES
	FlexArray<kvm_cpuid_entry2> cpuid(kMaxEntries);
	if (ioctl(fd_.get(), kGetSupportedCpuid, cpuid.data()) < 0)
		return errno_error("KVM_GET_SUPPORTED_CPUID");
	std::vector<kvm_cpuid_entry2> entries;
	for (size_t i = 0; i < cpuid.header()->count; ++i)
		entries.push_back(cpuid.entry(i));
	return entries;
}

int Kvm::check_extension(long capability) const
{
	return ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
}

// --- VmFd --------------------------------------------------------------------------

Status VmFd::set_user_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void *host) const
{
	kvm_userspace_memory_region region{};
	region.slot = slot;
	region.guest_phys_addr = gpa;
	region.memory_size = size;
	region.userspace_addr = reinterpret_cast<uint64_t>(host);
	return checked_ioctl(
		fd_.get(), KVM_SET_USER_MEMORY_REGION, &region,
		fmt::format("KVM_SET_USER_MEMORY_REGION slot {} ({} MiB at {:#x})", slot, size >> 20, gpa));
}

Status VmFd::set_tss_addr(uint64_t address) const
{
	return checked_ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(address),
			     fmt::format("KVM_SET_TSS_ADDR {:#x}", address));
}

Status VmFd::set_identity_map_addr(uint64_t address) const
{
	uint64_t value = address;
	return checked_ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &value,
			     fmt::format("KVM_SET_IDENTITY_MAP_ADDR {:#x}", address));
}

Status VmFd::create_irqchip() const
{
	return checked_ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
}

Status VmFd::create_pit2() const
{
	kvm_pit_config config{};
	// Without the speaker dummy, port 0x61 reads would exit to us.
	config.flags = KVM_PIT_SPEAKER_DUMMY;
	return checked_ioctl(fd_.get(), KVM_CREATE_PIT2, &config, "KVM_CREATE_PIT2");
}

Status VmFd::set_irq_line(uint32_t gsi, bool level) const
{
	kvm_irq_level irq{};
	irq.irq = gsi;
	irq.level = level ? 1 : 0;
	return checked_ioctl(fd_.get(), KVM_IRQ_LINE, &irq,
			     fmt::format("KVM_IRQ_LINE gsi {} level {}", gsi, irq.level));
}

Status VmFd::register_ioeventfd(int eventfd, uint16_t port, uint32_t length) const
{
	kvm_ioeventfd ioeventfd{};
	ioeventfd.addr = port;
	ioeventfd.len = length;
	ioeventfd.fd = eventfd;
	ioeventfd.flags = KVM_IOEVENTFD_FLAG_PIO;
	return checked_ioctl(fd_.get(), KVM_IOEVENTFD, &ioeventfd,
			     fmt::format("KVM_IOEVENTFD port {:#x} length {}", port, length));
}

Status VmFd::register_ioeventfd_mmio(int eventfd, uint64_t gpa, uint32_t length, uint64_t datamatch) const
{
	kvm_ioeventfd ioeventfd{};
	ioeventfd.datamatch = datamatch;
	ioeventfd.addr = gpa;
	ioeventfd.len = length;
	ioeventfd.fd = eventfd;
	ioeventfd.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
	return checked_ioctl(fd_.get(), KVM_IOEVENTFD, &ioeventfd,
			     fmt::format("KVM_IOEVENTFD gpa {:#x} length {} value {}", gpa, length, datamatch));
}

Result<VcpuFd> VmFd::create_vcpu(uint32_t id) const
{
	UniqueFd fd(ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id)));
	if (!fd)
		return errno_error(fmt::format("KVM_CREATE_VCPU {}", id));
	auto run = Mapping::of_fd(fd.get(), static_cast<size_t>(run_size_), "kvm_run");
	if (!run)
		return run.error();
	return VcpuFd(std::move(fd), std::move(*run));
}

int VmFd::check_extension(long capability) const
{
	return ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
}

Result<uint32_t> VmFd::tsc_khz() const
{
	int khz = ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
	if (khz <= 0)
		return errno_error("KVM_GET_TSC_KHZ (VM)");
	return static_cast<uint32_t>(khz);
}

// --- VcpuFd ------------------------------------------------------------------------

Status VcpuFd::get_regs(kvm_regs *regs) const
{
	return checked_ioctl(fd_.get(), KVM_GET_REGS, regs, "KVM_GET_REGS");
}

Status VcpuFd::set_regs(const kvm_regs &regs) const
{
	return checked_ioctl(fd_.get(), KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

Status VcpuFd::get_sregs(kvm_sregs *sregs) const
{
	return checked_ioctl(fd_.get(), KVM_GET_SREGS, sregs, "KVM_GET_SREGS");
}

Result<uint64_t> VcpuFd::translate(uint64_t linear_address) const
{
	kvm_translation translation{};
	translation.linear_address = linear_address;
	KAIROS_TRY(checked_ioctl(fd_.get(), KVM_TRANSLATE, &translation, "KVM_TRANSLATE"));
	if (!translation.valid)
		return make_error("linear address {:#x} is not mapped", linear_address);
	return static_cast<uint64_t>(translation.physical_address);
}

Status VcpuFd::set_sregs(const kvm_sregs &sregs) const
{
	return checked_ioctl(fd_.get(), KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
}

Status VcpuFd::set_fpu(const kvm_fpu &fpu) const
{
	return checked_ioctl(fd_.get(), KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

Status VcpuFd::set_cpuid(const std::vector<kvm_cpuid_entry2> &entries) const
{
	FlexArray<kvm_cpuid_entry2> cpuid(entries.size());
	for (size_t i = 0; i < entries.size(); ++i)
		cpuid.set_entry(i, entries[i]);
	return checked_ioctl(fd_.get(), kSetCpuid2, cpuid.data(),
			     fmt::format("KVM_SET_CPUID2 ({} entries)", entries.size()));
}

Status VcpuFd::set_msrs(const std::vector<kvm_msr_entry> &entries) const
{
	FlexArray<kvm_msr_entry> msrs(entries.size());
	for (size_t i = 0; i < entries.size(); ++i)
		msrs.set_entry(i, entries[i]);
	int written = ioctl(fd_.get(), kSetMsrs, msrs.data());
	if (written < 0)
		return errno_error("KVM_SET_MSRS");
	if (static_cast<size_t>(written) != entries.size())
		return make_error("KVM_SET_MSRS: MSR {:#x} was refused", entries[static_cast<size_t>(written)].index);
	return {};
}

Status VcpuFd::get_lapic(kvm_lapic_state *lapic) const
{
	return checked_ioctl(fd_.get(), KVM_GET_LAPIC, lapic, "KVM_GET_LAPIC");
}

Status VcpuFd::set_lapic(const kvm_lapic_state &lapic) const
{
	return checked_ioctl(fd_.get(), KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
}

Result<int64_t> VcpuFd::tsc_offset() const
{
	int64_t offset = 0;
	kvm_device_attr attr{};
	attr.group = KVM_VCPU_TSC_CTRL;
	attr.attr = KVM_VCPU_TSC_OFFSET;
	attr.addr = reinterpret_cast<uint64_t>(&offset);
	if (ioctl(fd_.get(), KVM_GET_DEVICE_ATTR, &attr) < 0)
		return errno_error("KVM_GET_DEVICE_ATTR KVM_VCPU_TSC_OFFSET");
	return offset;
}

Result<uint32_t> VcpuFd::tsc_khz() const
{
	int khz = ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
	if (khz <= 0)
		return errno_error("KVM_GET_TSC_KHZ (vCPU)");
	return static_cast<uint32_t>(khz);
}

int VcpuFd::run_once() const
{
	return ioctl(fd_.get(), KVM_RUN, 0) < 0 ? errno : 0;
}

// --- KvmIrqLine ------------------------------------------------------------------

void KvmIrqLine::set_level(bool high)
{
	auto status = vm_.set_irq_line(gsi_, high);
	if (!status && !reported_.exchange(true))
		log_.error("interrupt lost, the guest may hang: {} (later failures on GSI {} are not reported)",
			   status.error().message, gsi_);
}

}  // namespace kairos::vmm
