/*
 * KVMUsable's boot sector: real mode -> long mode -> one x87 instruction ->
 * write 0x2a to QEMU's isa-debug-exit port 0xf4, which ends QEMU with exit
 * status (0x2a<<1)|1 = 85. On this project's nested KVM the x87 step is
 * where guests die ("KVM internal error ... emulation failure", QEMU then
 * hangs), which is also where Debian's kernel hangs after "Probing EDD".
 * Build: see README.md.
 */
.globl start
.code16
start:
  cli
  xor %ax,%ax
  mov %ax,%ds
  mov %ax,%es
  mov %ax,%ss
  mov $0x7c00,%sp
  /* page tables: PML4 at 0x1000, PDPT 0x2000, PD 0x3000 (one 2 MiB page) */
  mov $0x1000,%di
  mov $0x3000,%cx
  xor %eax,%eax
  rep stosb
  movl $0x2003,0x1000
  movl $0x3003,0x2000
  movl $0x0083,0x3000
  lgdtl gdtr
  mov %cr4,%eax
  or $0x20,%eax          /* PAE */
  mov %eax,%cr4
  mov $0x1000,%eax
  mov %eax,%cr3
  mov $0xC0000080,%ecx   /* EFER */
  rdmsr
  or $0x100,%eax         /* LME */
  wrmsr
  mov %cr0,%eax
  or $0x80000001,%eax    /* PG|PE */
  mov %eax,%cr0
  ljmpl $0x08,$long
.code64
long:
  fninit
  fld1
  fwait
  fstp %st(0)
  fwait
  mov $0x2a,%al
  out %al,$0xf4
1: hlt
  jmp 1b
.align 8
gdt:
  .quad 0
  .quad 0x00209a0000000000   /* 64-bit code */
  .quad 0x0000920000000000   /* data */
gdtr:
  .word gdtr-gdt-1
  .long gdt
.org 510
  .byte 0x55,0xaa
