//go:build !purego

#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// func dotAVX2(a, b *float32, n int) float32
// n must be a multiple of 8. Four 8-wide FMA accumulators.
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loop32:
	CMPQ CX, $32
	JLT  loop8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  loop32

loop8:
	CMPQ CX, $8
	JLT  done
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  loop8

done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func gemvTAVX2(out, x, m *float32, k, cols, stride int)
// out[j] += Σ_i x[i]·m[i*stride+j] for j < cols; cols must be a multiple
// of 8. Columns go in blocks of 64 (eight accumulators, so the FMA chains
// overlap), then 8; each output accumulates over i in order.
TEXT ·gemvTAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ m+16(FP), DX
	MOVQ k+24(FP), R8
	MOVQ cols+32(FP), R9
	MOVQ stride+40(FP), R10
	SHLQ $2, R10
	XORQ R11, R11

block64:
	MOVQ R9, AX
	SUBQ R11, AX
	CMPQ AX, $64
	JLT  block8
	LEAQ (DI)(R11*4), BX
	VMOVUPS (BX), Y0
	VMOVUPS 32(BX), Y1
	VMOVUPS 64(BX), Y2
	VMOVUPS 96(BX), Y3
	VMOVUPS 128(BX), Y4
	VMOVUPS 160(BX), Y5
	VMOVUPS 192(BX), Y6
	VMOVUPS 224(BX), Y7
	LEAQ (DX)(R11*4), CX
	MOVQ SI, R12
	MOVQ R8, R13

loop64:
	TESTQ R13, R13
	JEQ   store64
	VBROADCASTSS (R12), Y15
	VFMADD231PS (CX), Y15, Y0
	VFMADD231PS 32(CX), Y15, Y1
	VFMADD231PS 64(CX), Y15, Y2
	VFMADD231PS 96(CX), Y15, Y3
	VFMADD231PS 128(CX), Y15, Y4
	VFMADD231PS 160(CX), Y15, Y5
	VFMADD231PS 192(CX), Y15, Y6
	VFMADD231PS 224(CX), Y15, Y7
	ADDQ $4, R12
	ADDQ R10, CX
	DECQ R13
	JMP  loop64

store64:
	VMOVUPS Y0, (BX)
	VMOVUPS Y1, 32(BX)
	VMOVUPS Y2, 64(BX)
	VMOVUPS Y3, 96(BX)
	VMOVUPS Y4, 128(BX)
	VMOVUPS Y5, 160(BX)
	VMOVUPS Y6, 192(BX)
	VMOVUPS Y7, 224(BX)
	ADDQ $64, R11
	JMP  block64

block8:
	MOVQ R9, AX
	SUBQ R11, AX
	CMPQ AX, $8
	JLT  done
	LEAQ (DI)(R11*4), BX
	VMOVUPS (BX), Y0
	LEAQ (DX)(R11*4), CX
	MOVQ SI, R12
	MOVQ R8, R13

loop8:
	TESTQ R13, R13
	JEQ   store8
	VBROADCASTSS (R12), Y15
	VFMADD231PS (CX), Y15, Y0
	ADDQ $4, R12
	ADDQ R10, CX
	DECQ R13
	JMP  loop8

store8:
	VMOVUPS Y0, (BX)
	ADDQ $8, R11
	JMP  block8

done:
	VZEROUPPER
	RET

// func gemmT4AVX2(o0, o1, o2, o3, x0, x1, x2, x3, m *float32, k, cols, stride int)
// For r in 0..3: o_r[j] += Σ_i x_r[i]·m[i*stride+j] for j < cols; cols must
// be a multiple of 16. Four rows share each load of m, which is what makes
// batched LSTM steps cheaper than four gemvT calls.
TEXT ·gemmT4AVX2(SB), NOSPLIT, $0-96
	MOVQ x0+32(FP), SI
	MOVQ x1+40(FP), DI
	MOVQ x2+48(FP), R8
	MOVQ x3+56(FP), R9
	MOVQ m+64(FP), DX
	MOVQ stride+88(FP), R10
	SHLQ $2, R10
	XORQ R11, R11 // column byte offset

block16:
	MOVQ cols+80(FP), AX
	SHLQ $2, AX
	SUBQ R11, AX
	CMPQ AX, $64
	JLT  done
	MOVQ o0+0(FP), BX
	VMOVUPS (BX)(R11*1), Y0
	VMOVUPS 32(BX)(R11*1), Y1
	MOVQ o1+8(FP), BX
	VMOVUPS (BX)(R11*1), Y2
	VMOVUPS 32(BX)(R11*1), Y3
	MOVQ o2+16(FP), BX
	VMOVUPS (BX)(R11*1), Y4
	VMOVUPS 32(BX)(R11*1), Y5
	MOVQ o3+24(FP), BX
	VMOVUPS (BX)(R11*1), Y6
	VMOVUPS 32(BX)(R11*1), Y7
	LEAQ (DX)(R11*1), CX
	XORQ R12, R12
	MOVQ k+72(FP), R13

loop:
	TESTQ R13, R13
	JEQ   store
	VMOVUPS (CX), Y8
	VMOVUPS 32(CX), Y9
	VBROADCASTSS (SI)(R12*1), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VBROADCASTSS (DI)(R12*1), Y11
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VBROADCASTSS (R8)(R12*1), Y12
	VFMADD231PS Y8, Y12, Y4
	VFMADD231PS Y9, Y12, Y5
	VBROADCASTSS (R9)(R12*1), Y13
	VFMADD231PS Y8, Y13, Y6
	VFMADD231PS Y9, Y13, Y7
	ADDQ $4, R12
	ADDQ R10, CX
	DECQ R13
	JMP  loop

store:
	MOVQ o0+0(FP), BX
	VMOVUPS Y0, (BX)(R11*1)
	VMOVUPS Y1, 32(BX)(R11*1)
	MOVQ o1+8(FP), BX
	VMOVUPS Y2, (BX)(R11*1)
	VMOVUPS Y3, 32(BX)(R11*1)
	MOVQ o2+16(FP), BX
	VMOVUPS Y4, (BX)(R11*1)
	VMOVUPS Y5, 32(BX)(R11*1)
	MOVQ o3+24(FP), BX
	VMOVUPS Y6, (BX)(R11*1)
	VMOVUPS Y7, 32(BX)(R11*1)
	ADDQ $64, R11
	JMP  block16

done:
	VZEROUPPER
	RET
