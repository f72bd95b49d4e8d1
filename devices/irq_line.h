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
};

}  // namespace kairos::devices
