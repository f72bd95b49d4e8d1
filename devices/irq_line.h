// IrqLine: how a device drives its interrupt pin. The VMM implements it on
// the in-kernel irqchip (KVM_IRQ_LINE); tests implement it with a recorder.
#pragma once

namespace kairos::devices {

class IrqLine {
public:
	virtual ~IrqLine() = default;
	// The pin's level. ISA lines are edge-triggered at the IOAPIC, so a
	// device raises an interrupt by a low-to-high transition.
	virtual void set_level(bool high) = 0;
	// One edge, and the line low again: what KVM's irqfd injects for an
	// eventfd signal (virt/kvm/eventfd.c irqfd_inject), without its
	// workqueue (see vmm/paravirt.cpp pulse_upcall).
	void pulse()
	{
		set_level(true);
		set_level(false);
	}
};

}  // namespace kairos::devices
