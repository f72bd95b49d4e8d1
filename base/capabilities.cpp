#include "base/capabilities.h"

#include <dirent.h>
#include <sys/capability.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <memory>
#include <sstream>
#include <type_traits>

#include "base/error.h"

namespace kairos {
namespace {

constexpr int kMaskBits = 64;

struct CapFree {
	void operator()(void *data) const { cap_free(data); }
};
using CapState = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

std::string capability_name(int capability)
{
	std::unique_ptr<char, CapFree> name(cap_to_name(static_cast<cap_value_t>(capability)));
	return name ? std::string(name.get()) : fmt::format("cap_{}", capability);
}

// The hexadecimal value of a field, which starts a line: "CapEff:\t0000000000800000".
Result<CapabilitySet> mask_field(std::string_view status, std::string_view field)
{
	std::string key = fmt::format("{}:", field);
	size_t at = status.starts_with(key) ? 0 : status.find(fmt::format("\n{}", key));
	if (at == std::string_view::npos)
		return make_error("/proc status: no {} field", field);
	std::string_view rest = status.substr(at + (at == 0 ? 0 : 1) + key.size());
	size_t begin = rest.find_first_not_of(" \t");
	std::string_view text = begin == std::string_view::npos ? std::string_view{}
								: rest.substr(begin, rest.find('\n', begin) - begin);
	uint64_t mask = 0;
	auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), mask, 16);
	if (text.empty() || error != std::errc{} || stop != text.data() + text.size())
		return make_error("/proc status: {} is not a hexadecimal mask: '{}'", field, text);
	return CapabilitySet::from_mask(mask);
}

Result<std::string> read_text(const std::string &path)
{
	std::ifstream in(path);
	if (!in)
		return errno_error("reading " + path);
	std::ostringstream text;
	text << in.rdbuf();
	return text.str();
}

Result<CapabilitySet> flag_set(cap_t state, cap_flag_t flag, const char *flag_name)
{
	CapabilitySet set;
	for (int capability = 0; capability < kMaskBits && capability <= CAP_LAST_CAP; ++capability) {
		cap_flag_value_t value = CAP_CLEAR;
		if (cap_get_flag(state, static_cast<cap_value_t>(capability), flag, &value) != 0)
			return errno_error(fmt::format("cap_get_flag({}, {})", capability_name(capability), flag_name));
		if (value == CAP_SET)
			set.add(capability);
	}
	return set;
}

// Needs CAP_SETPCAP in the effective set: PR_CAPBSET_DROP of each
// capability the running kernel has that keep lacks.
Status drop_bounding_except(CapabilitySet keep)
{
	for (int capability = 0; capability < kMaskBits && capability < static_cast<int>(cap_max_bits());
	     ++capability) {
		if (keep.contains(capability) || !CAP_IS_SUPPORTED(static_cast<cap_value_t>(capability)))
			continue;
		if (cap_drop_bound(static_cast<cap_value_t>(capability)) != 0)
			return errno_error(fmt::format("cap_drop_bound({})", capability_name(capability)));
	}
	return {};
}

}  // namespace

CapabilitySet CapabilitySet::of(std::initializer_list<int> capabilities)
{
	CapabilitySet set;
	for (int capability : capabilities)
		set.add(capability);
	return set;
}

bool CapabilitySet::contains(int capability) const
{
	return capability >= 0 && capability < kMaskBits && (mask_ >> capability & 1) != 0;
}

void CapabilitySet::add(int capability)
{
	if (capability >= 0 && capability < kMaskBits)
		mask_ |= uint64_t{1} << capability;
}

std::vector<std::string> CapabilitySet::names() const
{
	std::vector<std::string> names;
	for (int capability = 0; capability < kMaskBits; ++capability)
		if (contains(capability))
			names.push_back(capability_name(capability));
	return names;
}

Result<ThreadCapabilities> capabilities_from_status(std::string_view status)
{
	KAIROS_TRY_ASSIGN(inheritable, mask_field(status, "CapInh"));
	KAIROS_TRY_ASSIGN(permitted, mask_field(status, "CapPrm"));
	KAIROS_TRY_ASSIGN(effective, mask_field(status, "CapEff"));
	KAIROS_TRY_ASSIGN(bounding, mask_field(status, "CapBnd"));
	KAIROS_TRY_ASSIGN(ambient, mask_field(status, "CapAmb"));
	return ThreadCapabilities{inheritable, permitted, effective, bounding, ambient};
}

Result<ThreadCapabilities> capabilities_of_this_thread()
{
	KAIROS_TRY_ASSIGN(status, read_text("/proc/thread-self/status"));
	return capabilities_from_status(status);
}

Result<ProcessCapabilities> capabilities_of_every_thread()
{
	std::unique_ptr<DIR, int (*)(DIR *)> tasks(opendir("/proc/self/task"), closedir);
	if (!tasks)
		return errno_error("listing /proc/self/task");
	ProcessCapabilities process;
	while (const dirent *entry = readdir(tasks.get())) {
		std::string_view name = entry->d_name;
		if (name == "." || name == "..")
			continue;
		auto status = read_text(fmt::format("/proc/self/task/{}/status", name));
		if (!status)
			continue;  // the thread ended after the listing
		KAIROS_TRY_ASSIGN(sets, capabilities_from_status(*status));
		process.permitted = process.permitted | sets.permitted;
		++process.threads;
	}
	return process;
}

Result<CapabilityDrop> drop_capabilities_except(CapabilitySet keep)
{
	CapState current(cap_get_proc());
	if (!current)
		return errno_error("cap_get_proc");
	KAIROS_TRY_ASSIGN(before, flag_set(current.get(), CAP_PERMITTED, "permitted"));
	KAIROS_TRY_ASSIGN(effective, flag_set(current.get(), CAP_EFFECTIVE, "effective"));
	// The bounding set first: changing it takes CAP_SETPCAP, which the
	// capset below may remove.
	bool bounding = effective.contains(CAP_SETPCAP);
	if (bounding)
		KAIROS_TRY(drop_bounding_except(keep));

	CapabilitySet kept = keep & before;
	CapState wanted(cap_init());  // every set empty
	if (!wanted)
		return errno_error("cap_init");
	for (int capability = 0; capability < kMaskBits; ++capability) {
		if (!kept.contains(capability))
			continue;
		cap_value_t value = static_cast<cap_value_t>(capability);
		if (cap_set_flag(wanted.get(), CAP_PERMITTED, 1, &value, CAP_SET) != 0 ||
		    cap_set_flag(wanted.get(), CAP_EFFECTIVE, 1, &value, CAP_SET) != 0)
			return errno_error(fmt::format("cap_set_flag({})", capability_name(capability)));
	}
	if (cap_set_proc(wanted.get()) != 0)
		return errno_error(fmt::format("cap_set_proc (keeping {:#x} of {:#x})", kept.mask(), before.mask()));
	return CapabilityDrop{kept, before, bounding};
}

}  // namespace kairos
