#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "devices/bus.h"
#include "devices/serial.h"

using kairos::devices::Bus;
using kairos::devices::IrqLine;
using kairos::devices::Serial;

namespace {

class RecordingIrqLine : public IrqLine {
public:
	void set_level(bool high) override { levels.push_back(high); }
	std::vector<bool> levels;
};

// Register offsets (PC16550D Table II).
constexpr uint64_t kData = 0;
constexpr uint64_t kIer = 1;
constexpr uint64_t kIir = 2;
constexpr uint64_t kFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerReceivedData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerLineStatus = 0x04;
constexpr uint8_t kIerModemStatus = 0x08;

constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirReceivedData = 0x04;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirModemStatus = 0x00;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrIdle = 0x60;  // THRE | TEMT

struct Uart {
	std::shared_ptr<RecordingIrqLine> irq = std::make_shared<RecordingIrqLine>();
	std::string output;
	std::string polled;  // the bytes sent with the THRE interrupt off
	Serial serial{irq, [this](std::span<const uint8_t> bytes, Serial::TransmitPath path) {
			      output.append(bytes.begin(), bytes.end());
			      if (path == Serial::TransmitPath::Polled)
				      polled.append(bytes.begin(), bytes.end());
		      }};

	uint8_t in(uint64_t offset)
	{
		uint8_t value = 0;
		serial.read(offset, {&value, 1});
		return value;
	}
	void out(uint64_t offset, uint8_t value) { serial.write(offset, {&value, 1}); }
	void type(std::string_view text)
	{
		serial.enqueue_input({reinterpret_cast<const uint8_t *>(text.data()), text.size()});
	}
};

}  // namespace

TEST_CASE("serial: THR writes reach the output callback", "[serial]")
{
	Uart uart;
	CHECK(uart.in(kLsr) == kLsrIdle);
	uart.out(kData, 'h');
	uart.out(kData, 'i');
	CHECK(uart.output == "hi");
	// Transmission is synchronous: THR and the shifter are empty again.
	CHECK(uart.in(kLsr) == kLsrIdle);
}

TEST_CASE("serial: DLAB switches offsets 0 and 1 to the divisor latch", "[serial]")
{
	Uart uart;
	uart.out(kIer, kIerReceivedData);
	uart.out(kLcr, 0x83);         // DLAB, 8N1
	CHECK(uart.in(kData) == 12);  // 9600 baud at reset
	CHECK(uart.in(kIer) == 0);
	uart.out(kData, 0x01);  // 115200 baud
	uart.out(kIer, 0x02);
	CHECK(uart.in(kData) == 0x01);
	CHECK(uart.in(kIer) == 0x02);
	CHECK(uart.output.empty());  // a DLL write is not a transmit

	uart.out(kLcr, 0x03);
	CHECK(uart.in(kLcr) == 0x03);
	CHECK(uart.in(kIer) == kIerReceivedData);  // IER kept its value
	uart.out(kData, 'x');
	CHECK(uart.output == "x");
	uart.out(kLcr, 0x83);
	CHECK(uart.in(kData) == 0x01);
	CHECK(uart.in(kIer) == 0x02);
}

TEST_CASE("serial: IER keeps only its four defined bits", "[serial]")
{
	Uart uart;
	uart.out(kIer, 0xff);
	CHECK(uart.in(kIer) == 0x0f);
	uart.out(kMcr, 0xff);
	CHECK(uart.in(kMcr) == 0x1f);
}

TEST_CASE("serial: LSR.DR follows the receive buffer", "[serial]")
{
	Uart uart;
	CHECK((uart.in(kLsr)&kLsrDataReady) == 0);
	CHECK(uart.serial.input_space() == Serial::kFifoSize);
	uart.type("ab");
	CHECK(uart.in(kLsr) == (kLsrIdle | kLsrDataReady));
	CHECK(uart.serial.input_space() == Serial::kFifoSize - 2);
	CHECK(uart.in(kData) == 'a');
	CHECK((uart.in(kLsr)&kLsrDataReady) != 0);
	CHECK(uart.in(kData) == 'b');
	CHECK(uart.in(kLsr) == kLsrIdle);
	CHECK(uart.in(kData) == 0);  // empty reads do not underflow
	CHECK(uart.serial.input_space() == Serial::kFifoSize);
}

TEST_CASE("serial: IIR reports the FIFO bits only when FCR enables them", "[serial]")
{
	Uart uart;
	CHECK(uart.in(kIir) == kIirNone);
	uart.out(kFcr, 0x01);
	CHECK(uart.in(kIir) == (0xc0 | kIirNone));
	uart.type("xyz");
	uart.out(kFcr, 0x03);  // clear the receive FIFO
	CHECK((uart.in(kLsr)&kLsrDataReady) == 0);
	uart.type("x");
	uart.out(kFcr, 0x00);  // disabling the FIFOs clears them too
	CHECK(uart.in(kIir) == kIirNone);
	CHECK((uart.in(kLsr)&kLsrDataReady) == 0);
}

TEST_CASE("serial: IIR reports sources in priority order", "[serial]")
{
	Uart uart;
	uart.out(kIer, kIerReceivedData | kIerThrEmpty | kIerLineStatus | kIerModemStatus);
	// Loopback drops all three modem inputs that are normally on:
	// a modem-status change.
	uart.out(kMcr, kMcrLoop);
	std::string flood(Serial::kFifoSize + 1, 'x');
	uart.type(flood);  // data available, and an overrun

	CHECK(uart.in(kIir) == kIirLineStatus);
	CHECK(uart.in(kIir) == kIirLineStatus);  // reading IIR does not clear it
	CHECK(uart.in(kLsr) == (kLsrIdle | kLsrDataReady | kLsrOverrun));
	CHECK(uart.in(kIir) == kIirReceivedData);
	for (size_t i = 0; i < Serial::kFifoSize; i++)
		uart.in(kData);
	CHECK(uart.in(kIir) == kIirThrEmpty);
	CHECK(uart.in(kIir) == kIirModemStatus);  // that IIR read acknowledged THRE
	CHECK(uart.in(kMsr) == 0x0b);             // DCTS | DDSR | DDCD, inputs now all off
	CHECK(uart.in(kIir) == kIirNone);
}

TEST_CASE("serial: THRE interrupt follows 16550 semantics", "[serial]")
{
	Uart uart;
	CHECK(uart.in(kIir) == kIirNone);

	// Linux's UART_BUG_THRE probe: enabling ETBEI with THR empty raises
	// THRE, reading IIR acknowledges it, and re-enabling raises it again.
	uart.out(kIer, kIerThrEmpty);
	CHECK(uart.in(kIir) == kIirThrEmpty);
	CHECK(uart.in(kIir) == kIirNone);
	uart.out(kIer, 0);
	uart.out(kIer, kIerThrEmpty);
	CHECK(uart.in(kIir) == kIirThrEmpty);

	// Rewriting IER with ETBEI already on does not re-raise it.
	uart.out(kIer, kIerThrEmpty);
	CHECK(uart.in(kIir) == kIirNone);

	// A THR write empties at once, so THRE is pending again.
	uart.out(kData, 'a');
	CHECK(uart.in(kIir) == kIirThrEmpty);
	CHECK(uart.in(kIir) == kIirNone);

	// With ETBEI off THRE is not reported; turning it on raises it.
	uart.out(kIer, 0);
	uart.out(kData, 'b');
	CHECK(uart.in(kIir) == kIirNone);
	uart.out(kIer, kIerThrEmpty);
	CHECK(uart.in(kIir) == kIirThrEmpty);
	CHECK(uart.output == "ab");
}

TEST_CASE("serial: the IRQ line is the pending interrupt gated by OUT2", "[serial]")
{
	Uart uart;
	auto &levels = uart.irq->levels;

	// Pending but OUT2 off: the line stays low and is not touched.
	uart.out(kIer, kIerThrEmpty);
	CHECK(levels.empty());
	uart.out(kMcr, kMcrOut2 | kMcrDtr | kMcrRts);
	CHECK(levels == std::vector<bool>{true});

	uart.in(kIir);  // acknowledges THRE
	CHECK(levels == std::vector<bool>{true, false});
	uart.out(kData, 'a');
	CHECK(levels == std::vector<bool>{true, false, true});
	uart.out(kData, 'b');  // still pending: no call
	CHECK(levels.size() == 3);
	uart.out(kIer, 0);
	CHECK(levels == std::vector<bool>{true, false, true, false});

	// Received data raises the line until the guest drains it.
	uart.out(kIer, kIerReceivedData);
	uart.type("hi");
	CHECK(levels.size() == 5);
	CHECK(levels.back() == true);
	uart.in(kData);
	CHECK(levels.size() == 5);
	uart.in(kData);
	CHECK(levels.size() == 6);
	CHECK(levels.back() == false);

	// Dropping OUT2 with an interrupt pending lowers the line, raising it
	// again restores it: every change is an edge the IOAPIC can see.
	uart.type("!");
	CHECK(levels.size() == 7);
	uart.out(kMcr, kMcrDtr | kMcrRts);
	CHECK(levels.size() == 8);
	CHECK(levels.back() == false);
	uart.out(kMcr, kMcrOut2 | kMcrDtr | kMcrRts);
	CHECK(levels.size() == 9);
	CHECK(levels.back() == true);
	CHECK(uart.in(kIir) == kIirReceivedData);
}

TEST_CASE("serial: the line status interrupt clears on LSR read", "[serial]")
{
	Uart uart;
	uart.out(kMcr, kMcrOut2);
	uart.out(kIer, kIerLineStatus);
	std::string flood(Serial::kFifoSize + 10, 'x');
	uart.type(flood);
	CHECK(uart.in(kIir) == kIirLineStatus);
	CHECK(uart.irq->levels == std::vector<bool>{true});
	CHECK((uart.in(kLsr)&kLsrOverrun) != 0);
	CHECK(uart.irq->levels == std::vector<bool>{true, false});
	CHECK((uart.in(kLsr)&kLsrOverrun) == 0);
}

TEST_CASE("serial: loopback returns transmitted bytes and mirrors MCR in MSR", "[serial]")
{
	Uart uart;
	CHECK((uart.in(kMsr)&0xf0) == 0xb0);  // DCD, DSR, CTS: a ready modem

	// Linux's 8250 autoconfig loopback test: RTS and OUT2 in, CTS and DCD out.
	uart.out(kMcr, kMcrLoop | kMcrRts | kMcrOut2);
	CHECK((uart.in(kMsr)&0xf0) == 0x90);
	uart.out(kMcr, kMcrLoop | kMcrDtr | kMcrOut1);
	uint8_t status = uart.in(kMsr);
	CHECK((status & 0xf0) == 0x60);  // DSR, RI
	CHECK((status & 0x0f) == 0x0b);  // DCTS, DDSR, DDCD
	uart.out(kMcr, kMcrLoop | kMcrDtr);
	CHECK((uart.in(kMsr)&0x0f) == 0x04);  // TERI: RI went away
	CHECK((uart.in(kMsr)&0x0f) == 0x00);  // deltas clear on read

	uart.out(kIer, kIerReceivedData);
	uart.out(kMcr, kMcrLoop | kMcrOut2);
	uart.out(kData, 'x');
	CHECK(uart.output.empty());
	CHECK((uart.in(kLsr)&kLsrDataReady) != 0);
	// Interrupts show in IIR, but loopback disconnects OUT2 from the line.
	CHECK(uart.in(kIir) == kIirReceivedData);
	CHECK(uart.irq->levels.empty());
	CHECK(uart.in(kData) == 'x');

	uart.out(kMcr, kMcrOut2);
	uart.out(kData, 'y');
	CHECK(uart.output == "y");
	CHECK((uart.in(kMsr)&0xf0) == 0xb0);
}

TEST_CASE("serial: receive overflow sets OE and keeps the FIFO", "[serial]")
{
	Uart uart;
	std::string first(Serial::kFifoSize - 1, 'a');
	uart.type(first);
	CHECK(uart.serial.input_space() == 1);
	uart.type("bcd");  // 'b' fits, the rest is lost
	CHECK(uart.serial.input_space() == 0);
	uart.type("e");
	CHECK(uart.in(kLsr) == (kLsrIdle | kLsrDataReady | kLsrOverrun));
	CHECK(uart.in(kLsr) == (kLsrIdle | kLsrDataReady));  // OE clears on read

	std::string received;
	while (uart.in(kLsr)&kLsrDataReady)
		received.push_back(static_cast<char>(uart.in(kData)));
	CHECK(received == first + "b");
	CHECK(uart.serial.input_space() == Serial::kFifoSize);
}

TEST_CASE("serial: scratch register and byte-wise wide accesses", "[serial]")
{
	Uart uart;
	uart.out(kScr, 0x5a);
	CHECK(uart.in(kScr) == 0x5a);

	// A 16-bit access is two byte accesses: LSR then MSR.
	uint8_t wide[2] = {};
	uart.serial.read(kLsr, wide);
	CHECK(wide[0] == kLsrIdle);
	CHECK((wide[1] & 0xf0) == 0xb0);
}

TEST_CASE("serial: bytes sent with THRE interrupts off are told apart from interrupt-driven ones", "[serial]")
{
	// Linux's printk console clears IER around its polled writes; the tty
	// layer (what programs print) sends from the THRE interrupt.
	Uart uart;
	for (char c : std::string_view("boot\n"))
		uart.out(kData, static_cast<uint8_t>(c));
	uart.out(kIer, kIerThrEmpty | kIerReceivedData);  // a program opened the port
	for (char c : std::string_view("echo\n"))
		uart.out(kData, static_cast<uint8_t>(c));
	uart.out(kIer, 0);  // printk: IER cleared, then restored
	for (char c : std::string_view("panic\n"))
		uart.out(kData, static_cast<uint8_t>(c));
	uart.out(kIer, kIerReceivedData);  // receive only: still polled
	uart.out(kData, '!');
	CHECK(uart.output == "boot\necho\npanic\n!");
	CHECK(uart.polled == "boot\npanic\n!");
}

TEST_CASE("serial: registers through the bus at COM1", "[serial]")
{
	Bus bus;
	std::string output;
	auto serial = std::make_shared<Serial>(nullptr, [&](std::span<const uint8_t> bytes, Serial::TransmitPath) {
		output.append(bytes.begin(), bytes.end());
	});
	REQUIRE(bus.add(0x3f8, 8, serial).ok());
	uint8_t byte = 'k';
	REQUIRE(bus.write(0x3f8, {&byte, 1}));
	CHECK(output == "k");
	REQUIRE(bus.read(0x3fd, {&byte, 1}));
	CHECK(byte == kLsrIdle);
	CHECK_FALSE(bus.read(0x400, {&byte, 1}));
}

TEST_CASE("serial: input from another thread arrives in order under back-pressure", "[serial]")
{
	Uart uart;
	constexpr size_t kTotal = 3 * Serial::kFifoSize;
	std::thread producer([&] {
		size_t sent = 0;
		while (sent < kTotal) {
			size_t space = uart.serial.input_space();
			if (space == 0) {
				std::this_thread::yield();
				continue;
			}
			std::vector<uint8_t> chunk;
			for (size_t i = 0; i < space && sent < kTotal; i++, sent++)
				chunk.push_back(static_cast<uint8_t>(sent % 251));
			uart.serial.enqueue_input(chunk);
		}
	});
	size_t received = 0;
	bool in_order = true;
	while (received < kTotal) {
		if (!(uart.in(kLsr)&kLsrDataReady)) {
			std::this_thread::yield();
			continue;
		}
		in_order = in_order && uart.in(kData) == static_cast<uint8_t>(received % 251);
		received++;
	}
	producer.join();
	CHECK(in_order);
	// The only writer was the producer and it respected input_space.
	CHECK((uart.in(kLsr)&kLsrOverrun) == 0);
}

TEST_CASE("the guest reads input once its driver enables the receive interrupt", "[serial]")
{
	Uart uart;
	CHECK_FALSE(uart.serial.guest_reads_input());
	uart.out(kIer, kIerReceivedData);
	CHECK(uart.serial.guest_reads_input());
	uart.out(kIer, kIerThrEmpty);
	CHECK_FALSE(uart.serial.guest_reads_input());
}

TEST_CASE("serial: the host hears when the guest wants input again, once per change", "[serial]")
{
	Uart uart;
	int calls = 0;
	uart.serial.set_input_wanted([&] { ++calls; });
	uart.out(kLcr, 0x03);
	CHECK(calls == 0);  // nothing enabled yet
	uart.out(kIer, kIerReceivedData);
	CHECK(calls == 1);  // the driver opened the port
	uart.out(kIer, kIerReceivedData);
	CHECK(calls == 1);  // the same IER again is no change

	// A batch of input stops wanting; the read that takes its last byte
	// wants again, once per batch rather than once per byte.
	std::string fill(Serial::kFifoSize, 'x');
	uart.type(fill);
	CHECK(uart.serial.input_space() == 0);
	for (size_t i = 1; i < Serial::kFifoSize; i++)
		CHECK(uart.in(kData) == 'x');
	CHECK(calls == 1);
	CHECK(uart.in(kData) == 'x');
	CHECK(calls == 2);
	CHECK(uart.in(kData) == 0);
	CHECK(calls == 2);  // still wanted: no second call

	// Disabling and enabling the interrupt again is a new want.
	uart.out(kIer, 0);
	uart.out(kIer, kIerReceivedData);
	CHECK(calls == 3);
}

TEST_CASE("serial: the receiver holds one 16-byte FIFO of host input", "[serial]")
{
	Uart uart;
	CHECK(uart.serial.input_space() == 16);
	uart.type("abc");
	CHECK(uart.serial.input_space() == 13);
}

TEST_CASE("serial: received data interrupts at the FIFO trigger level, the rest through the timeout", "[serial]")
{
	Uart uart;
	uart.out(kMcr, kMcrOut2);
	uart.out(kIer, kIerReceivedData);
	CHECK(uart.serial.receive_trigger_level() == 1);  // 16450 mode: every character
	uart.out(kFcr, 0x81);                             // what Linux writes for a 16550A: trigger 8
	CHECK(uart.serial.receive_trigger_level() == 8);
	constexpr uint8_t kFifos = 0xc0;
	constexpr uint8_t kIirCharacterTimeout = 0x0c;

	// Below the trigger level: data ready, no interrupt yet, and the host
	// must run the character timeout.
	uart.type("1234567");
	CHECK((uart.in(kLsr)&kLsrDataReady) != 0);
	CHECK(uart.in(kIir) == (kFifos | kIirNone));
	CHECK(uart.irq->levels.empty());
	CHECK(uart.serial.awaits_character_timeout());

	// The eighth character reaches the trigger level.
	uart.type("8");
	CHECK(uart.in(kIir) == (kFifos | kIirReceivedData));
	CHECK(uart.irq->levels == std::vector<bool>{true});
	CHECK_FALSE(uart.serial.awaits_character_timeout());

	// Reading below the trigger level drops the interrupt; the rest waits
	// for the timeout, which the next read acknowledges.
	CHECK(uart.in(kData) == '1');
	CHECK(uart.in(kIir) == (kFifos | kIirNone));
	CHECK(uart.irq->levels == std::vector<bool>{true, false});
	CHECK(uart.serial.awaits_character_timeout());
	uart.serial.character_timeout();
	CHECK_FALSE(uart.serial.awaits_character_timeout());
	CHECK(uart.in(kIir) == (kFifos | kIirCharacterTimeout));
	CHECK(uart.irq->levels == std::vector<bool>{true, false, true});
	CHECK(uart.in(kData) == '2');
	CHECK(uart.in(kIir) == (kFifos | kIirNone));
	CHECK(uart.serial.awaits_character_timeout());

	// A character arriving restarts the timer too.
	uart.serial.character_timeout();
	uart.type("9");
	CHECK(uart.in(kIir) == (kFifos | kIirNone));
	CHECK(uart.serial.awaits_character_timeout());

	// An empty FIFO has no timeout to indicate.
	uart.out(kFcr, 0x83);  // clear the receiver
	uart.serial.character_timeout();
	CHECK(uart.in(kIir) == (kFifos | kIirNone));
	CHECK_FALSE(uart.serial.awaits_character_timeout());

	// The other trigger levels (FCR bits 6-7).
	uart.out(kFcr, 0x01);
	CHECK(uart.serial.receive_trigger_level() == 1);
	uart.out(kFcr, 0x41);
	CHECK(uart.serial.receive_trigger_level() == 4);
	uart.out(kFcr, 0xc1);
	CHECK(uart.serial.receive_trigger_level() == 14);
}

TEST_CASE("serial: a character takes the time of the line the guest programmed", "[serial]")
{
	Uart uart;
	auto program = [&](uint16_t divisor, uint8_t line_control) {
		uart.out(kLcr, 0x80);
		uart.out(kData, static_cast<uint8_t>(divisor & 0xff));
		uart.out(kIer, static_cast<uint8_t>(divisor >> 8));
		uart.out(kLcr, line_control);
	};
	// At reset: divisor 12 (9600 baud), LCR 0: 5 data bits, 1 stop bit,
	// with the start bit 7 bits.
	CHECK(uart.serial.character_time_ns() == 7 * 12 * 1'000'000'000ULL / 115200);
	program(12, 0x03);  // 9600 8N1, as console=ttyS0: 10 bits, ~1.04 ms
	CHECK(uart.serial.character_time_ns() == 1'041'666);
	program(1, 0x03);  // 115200 8N1: 86.8 us, 11520 characters a second
	CHECK(uart.serial.character_time_ns() == 86'805);
	program(1, 0x0f);  // 8 data bits, parity, 2 stop bits: 12 bits
	CHECK(uart.serial.character_time_ns() == 12 * 1'000'000'000ULL / 115200);
	program(1, 0x04);  // 5 data bits and 1.5 stop bits: 7.5 bits
	CHECK(uart.serial.character_time_ns() == 15 * 1'000'000'000ULL / (2 * 115200));
	// Divisor 0 is the slowest line, not an infinitely fast one.
	program(0, 0x03);
	CHECK(uart.serial.character_time_ns() == 10 * 65536 * 1'000'000'000ULL / 115200);
}

TEST_CASE("serial: --stats counts register accesses, received bytes and interrupts", "[serial]")
{
	Uart uart;
	uart.out(kMcr, kMcrOut2);
	uart.out(kIer, kIerReceivedData);
	uart.type("ab");
	uart.in(kData);
	uart.in(kData);
	uint8_t wide[2] = {};
	uart.serial.read(kLsr, wide);  // one exit, however wide
	Serial::Stats stats = uart.serial.stats();
	CHECK(stats.register_accesses == 5);
	CHECK(stats.received_bytes == 2);
	CHECK(stats.interrupts == 1);
}
