/* Guest entry (DESIGN.md section 8). Every vCPU starts here in 64-bit long
 * mode with RDI = vCPU index, RSI = boot-info GPA, RSP = top of its own 64 KiB
 * stack (16-byte aligned), RFLAGS = 0x2 (IF = 0, DF = 0). */
        .section .text.start, "ax"
        .globl  _start
        .type   _start, @function
_start:
        xorl    %ebp, %ebp              /* outermost frame for debuggers */
        call    runtime_main            /* (vcpu in RDI, boot info in RSI); never returns */
1:      hlt
        jmp     1b
        .size   _start, . - _start

        .section .note.GNU-stack, "", @progbits
