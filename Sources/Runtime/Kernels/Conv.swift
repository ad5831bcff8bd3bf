import CKernels
import Graph
import Linalg

/// Conv (float32, NCHW and its 1-D/3-D relatives): groups, dilations, strides, explicit pads and
/// auto_pad SAME_UPPER/SAME_LOWER/VALID.
///
/// Each group of each image is one sgemm, `Y_g[M/G, P] = W_g[M/G, C/G·K] · col[C/G·K, P]`, over
/// the im2col lowering of the input (skipped for 1×1 stride-1 unpadded kernels, whose input already
/// is that matrix): ``PackedGEMM`` on a constant weight packed when the kernel is built (bias and
/// ReLU/Clip applied in its tiles), else `BLAS.sgemm`. Depthwise convolutions (one input channel per group) of one or two spatial axes
/// take a direct path instead.
struct Conv: Kernel {
  let window: WindowAttributes
  let group: Int
  /// The activation of a fused (`ai.rebirth`) Conv, applied to each block of output as it is made.
  let activation: FusedActivation?
  /// A constant weight packed for ``PackedGEMM`` (each group's M/G×K block), when the processor
  /// has its micro-kernels and the convolution takes the lowered path; nil otherwise (BLAS).
  let packed: PackedGEMM.PackedMatrix?

  init(_ builder: KernelBuilder) throws {
    window = try WindowAttributes(builder, hasDilations: true, hasCeilMode: false)
    group = try builder.int("group", default: 1)
    activation = try FusedActivation.fused(builder)
    guard group >= 1 else { throw builder.attributeError("group", "must be positive, got \(group)") }
    packed = try Self.pack(builder.constantInput(1), group: group, isa: PackedGEMM.detected)
  }

  /// The weight packed once for the lowered path, or nil: no micro-kernel, a weight that is not a
  /// constant float32 array of a Conv's rank, groups that do not divide it, or a depthwise weight
  /// (one input channel per group over at most two spatial axes: the direct path takes it).
  static func pack(_ w: NDArray?, group: Int, isa: PackedGEMM.ISA) -> PackedGEMM.PackedMatrix? {
    guard isa != .none, let w, w.dtype == .float, w.rank >= 3, w.count > 0 else { return nil }
    let (outChannels, groupChannels) = (w.shape[0], w.shape[1])
    guard outChannels % group == 0, !(groupChannels == 1 && w.rank - 2 <= 2) else { return nil }
    let depth = w.count / outChannels
    guard depth <= BLAS.maxDimension else { return nil }
    return w.withUnsafeBufferPointer(of: Float.self) { wp in
      PackedGEMM.PackedMatrix(isa: isa, wp.baseAddress!, groups: group, rows: outChannels / group, depth: depth)
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .float)
    let w = try context.input(1, .float)
    let bias = try context.optionalInput(2).map { b throws(RuntimeError) in
      guard b.dtype == .float else { throw context.unsupportedType(b.dtype, input: 2) }
      return b
    }
    guard x.rank >= 3 else {
      throw context.error("input 0 must have a batch, a channel and spatial axes; got \(describe(shape: x.shape))")
    }
    guard w.rank == x.rank else {
      throw context.error("weight shape \(describe(shape: w.shape)) does not match input \(describe(shape: x.shape))")
    }
    let (batch, channels, outChannels, groupChannels) = (x.shape[0], x.shape[1], w.shape[0], w.shape[1])
    guard channels == groupChannels * group, outChannels % group == 0 else {
      throw context.error("input has \(channels) channels and weight \(describe(shape: w.shape)) with group \(group)")
    }
    if let b = bias, b.shape != [outChannels] {
      throw context.error("bias shape \(describe(shape: b.shape)) is not [\(outChannels)]")
    }
    let kernel = Array(w.shape[2...])
    if let k = window.kernelShape, k != kernel {
      throw context.label.attributeError("kernel_shape", "\(k) disagrees with the weight's \(kernel)")
    }
    let geometry = try window.resolve(input: Array(x.shape[2...]), kernel: kernel, label: context.label)
    var y = NDArray(uninitialized: .float, shape: [batch, outChannels] + geometry.output)
    guard y.count > 0 else { return [y] }
    let kSize = groupChannels * geometry.kernelSize
    guard max(kSize, geometry.outputSize, outChannels) <= BLAS.maxDimension else {
      throw context.error("too large for BLAS")
    }

    x.withUnsafeBufferPointer(of: Float.self) { xp in
      w.withUnsafeBufferPointer(of: Float.self) { wp in
        y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
          NDArray.withOptionalPointer(bias, of: Float.self) { biasPointer in
            let problem = Problem(
              x: xp.baseAddress!, w: wp.baseAddress!, bias: biasPointer, y: yp.baseAddress!, batch: batch,
              channels: channels, outChannels: outChannels, group: group, geometry: geometry,
              threads: context.threadCount, activation: activation,
              packed: packed.flatMap { $0.rows * group == outChannels && $0.depth == kSize ? $0 : nil })
            if groupChannels == 1 && geometry.rank <= 2 {
              DepthwiseConv.run(problem)
            } else {
              Self.runLowered(problem)
            }
          }
        }
      }
    }
    return [y]
  }

  /// Everything a convolution path needs, as raw pointers into arrays the caller keeps alive.
  struct Problem {
    let x: UnsafePointer<Float>
    let w: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    let y: UnsafeMutablePointer<Float>
    let batch: Int, channels: Int, outChannels: Int, group: Int
    let geometry: WindowGeometry
    let threads: Int
    /// Applied in place to each image-and-group (lowered) or plane (depthwise) of output once made.
    var activation: FusedActivation? = nil
    /// The weight packed for ``PackedGEMM`` (lowered path), or nil for BLAS.
    var packed: PackedGEMM.PackedMatrix? = nil
  }

  /// im2col + sgemm per image and group.
  static func runLowered(_ p: Problem) {
    let g = p.geometry
    let k = p.channels / p.group * g.kernelSize
    let pointwise =
      g.kernel.allSatisfy { $0 == 1 } && g.strides.allSatisfy { $0 == 1 }
      && g.padsBegin.allSatisfy { $0 == 0 } && g.padsEnd.allSatisfy { $0 == 0 }
    // The packed product makes the im2col matrix of a 1-D/2-D input as it packs it.
    let packsInput = p.packed != nil && g.outputSize >= PackedGEMM.minimumColumns && g.rank <= 2
    if pointwise || packsInput {
      lowered(p, col: nil, packsInput: packsInput && !pointwise)
    } else {
      withScratch(k * g.outputSize, of: Float.self) { lowered(p, col: $0, packsInput: false) }
    }
  }

  /// The products of `runLowered`; `col` is nil when the input already is the lowered matrix or
  /// (`packsInput`) the packed product lowers it itself.
  private static func lowered(_ p: Problem, col: UnsafeMutablePointer<Float>?, packsInput: Bool) {
    let g = p.geometry
    let (cg, mg) = (p.channels / p.group, p.outChannels / p.group)
    let (k, outSize, inSize) = (cg * g.kernelSize, g.outputSize, g.inputSize)
    for n in 0..<p.batch {
      for grp in 0..<p.group {
        let xg = p.x + (n * p.channels + grp * cg) * inSize
        let yg = p.y + (n * p.outChannels + grp * mg) * outSize
        if packsInput, let packed = p.packed, let input = convolutionInput(xg, cg, g) {
          let applied = PackedGEMM.multiply(
            packed, group: grp, n: outSize, b: input, c: yg, ldc: outSize, bias: p.bias.map { $0 + grp * mg },
            activation: p.activation, threads: p.threads)
          if !applied { p.activation?.apply(yg, count: mg * outSize, threads: p.threads) }
          continue
        }
        let matrix: UnsafePointer<Float>
        if let col {
          Parallel.forEach(count: cg, threads: p.threads, grain: max(1, 4096 / max(g.kernelSize * outSize, 1))) { r in
            Im2Col.lower(xg, channels: r, geometry: g, into: col + r.lowerBound * g.kernelSize * outSize)
          }
          matrix = UnsafePointer(col)
        } else {
          matrix = xg
        }
        if let packed = p.packed, outSize >= PackedGEMM.minimumColumns {
          let applied = PackedGEMM.multiply(
            packed, group: grp, n: outSize, b: matrix, ldb: outSize, c: yg, ldc: outSize,
            bias: p.bias.map { $0 + grp * mg }, activation: p.activation, threads: p.threads)
          if !applied { p.activation?.apply(yg, count: mg * outSize, threads: p.threads) }
          continue
        }
        if let bias = p.bias {
          for m in 0..<mg { (yg + m * outSize).update(repeating: bias[grp * mg + m], count: outSize) }
        }
        BLAS.sgemm(
          m: mg, n: outSize, k: k, a: p.w + grp * mg * k, lda: k, b: matrix, ldb: outSize,
          beta: p.bias == nil ? 0 : 1, c: yg, ldc: outSize)
        p.activation?.apply(yg, count: mg * outSize, threads: p.threads)
      }
    }
  }
}

extension Conv {
  /// The operand the packed product lowers itself: the input of a 1-D or 2-D convolution (a 1-D one
  /// as height 1), or nil for other ranks.
  static func convolutionInput(
    _ x: UnsafePointer<Float>, _ channels: Int, _ g: WindowGeometry
  ) -> PackedGEMM.Operand? {
    guard g.rank == 1 || g.rank == 2 else { return nil }
    let two = g.rank == 2
    func axis(_ values: [Int], _ default: Int) -> (Int, Int) { two ? (values[0], values[1]) : (`default`, values[0]) }
    let (inH, inW) = axis(g.input, 1)
    let (outH, outW) = axis(g.output, 1)
    let (kH, kW) = axis(g.kernel, 1)
    let (sH, sW) = axis(g.strides, 1)
    let (dH, dW) = axis(g.dilations, 1)
    let (pH, pW) = axis(g.padsBegin, 0)
    return .convolution(
      rb_conv2d_input(
        x: x, channels: channels, in_h: inH, in_w: inW, out_h: outH, out_w: outW, k_h: kH, k_w: kW, stride_h: sH,
        stride_w: sW, dilation_h: dH, dilation_w: dW, pad_h: pH, pad_w: pW))
  }
}

/// Depthwise convolution (one input channel per group, any channel multiplier) over one or two
/// spatial axes, computed directly: each output row accumulates `weight · input row` per tap in
/// contiguous loops. With a horizontal stride s > 1 the input plane is first split into s column
/// phases (columns ≡ p mod s), so that every tap still reads contiguously; with three horizontal
/// taps, their interior ranges are fused into one pass over the output row.
enum DepthwiseConv {
  /// Where tap `kw` reads, for output columns `lo..<hi`: `phase` plane, at column `ow + offset`.
  struct Tap {
    let lo: Int, hi: Int, phase: Int, offset: Int
  }

  static func run(_ p: Conv.Problem) {
    let g = p.geometry
    // One spatial axis is a height-1 image.
    let two = g.rank == 2
    let (inH, inW) = two ? (g.input[0], g.input[1]) : (1, g.input[0])
    let (outH, outW) = two ? (g.output[0], g.output[1]) : (1, g.output[0])
    let (kH, kW) = two ? (g.kernel[0], g.kernel[1]) : (1, g.kernel[0])
    let (sH, sW) = two ? (g.strides[0], g.strides[1]) : (1, g.strides[0])
    let (dH, dW) = two ? (g.dilations[0], g.dilations[1]) : (1, g.dilations[0])
    let (pH, pW) = two ? (g.padsBegin[0], g.padsBegin[1]) : (0, g.padsBegin[0])
    let multiplier = p.outChannels / p.channels
    let phaseWidth = (inW + sW - 1) / sW
    let taps: [Tap] = (0..<kW).map { kw in
      let offset = kw * dW - pW  // input column = ow·sW + offset
      let lo = offset >= 0 ? 0 : min(outW, (-offset + sW - 1) / sW)
      let hi = inW - offset <= 0 ? 0 : min(outW, (inW - offset + sW - 1) / sW)
      let phase = ((offset % sW) + sW) % sW
      return Tap(lo: lo, hi: max(lo, hi), phase: phase, offset: (offset - phase) / sW)
    }
    let planes = p.batch * p.outChannels
    let grain = max(1, 16384 / max(outH * outW * kH * kW, 1))
    Parallel.forEach(count: planes, threads: p.threads, grain: grain) { range in
      withScratch(sW > 1 ? sW * inH * phaseWidth : 0, of: Float.self) { phases in
        var lastInput = -1
        for plane in range {
          let (n, m) = (plane / p.outChannels, plane % p.outChannels)
          let inputIndex = n * p.channels + m / multiplier
          var input = p.x + inputIndex * inH * inW
          var rowStride = inW
          if sW > 1 {
            if inputIndex != lastInput {
              deinterleave(input, rows: inH, width: inW, stride: sW, into: phases, phaseWidth: phaseWidth)
            }
            lastInput = inputIndex
            input = UnsafePointer(phases)
            rowStride = phaseWidth
          }
          let phasePlane = inH * rowStride
          let weights = p.w + m * kH * kW
          let output = p.y + plane * outH * outW
          output.update(repeating: p.bias?[m] ?? 0, count: outH * outW)
          for oh in 0..<outH {
            let row = output + oh * outW
            for kh in 0..<kH {
              let ih = oh * sH - pH + kh * dH
              if ih < 0 || ih >= inH { continue }
              let inputRow = input + ih * rowStride
              accumulate(row, weights + kh * kW, taps, inputRow, phasePlane)
            }
          }
          p.activation?.apply(output, count: outH * outW)
        }
      }
    }
  }

  /// `row[ow] += Σ_taps w[k] · source_k[ow]` over each tap's valid columns.
  @inline(__always)
  private static func accumulate(
    _ row: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, _ taps: [Tap], _ inputRow: UnsafePointer<Float>,
    _ phasePlane: Int
  ) {
    if taps.count == 3 {
      let (t0, t1, t2) = (taps[0], taps[1], taps[2])
      let lo = max(t0.lo, t1.lo, t2.lo)
      let hi = min(t0.hi, t1.hi, t2.hi)
      if lo < hi {
        let (s0, s1, s2) = (
          source(t0, inputRow, phasePlane), source(t1, inputRow, phasePlane), source(t2, inputRow, phasePlane)
        )
        let (w0, w1, w2) = (w[0], w[1], w[2])
        for ow in lo..<hi { row[ow] += w0 * s0[ow] + w1 * s1[ow] + w2 * s2[ow] }
        for (k, t) in [t0, t1, t2].enumerated() {
          tap(row, w[k], source(t, inputRow, phasePlane), t.lo, min(t.hi, lo))
          tap(row, w[k], source(t, inputRow, phasePlane), max(t.lo, hi), t.hi)
        }
        return
      }
    }
    for (k, t) in taps.enumerated() { tap(row, w[k], source(t, inputRow, phasePlane), t.lo, t.hi) }
  }

  @inline(__always)
  private static func source(_ t: Tap, _ inputRow: UnsafePointer<Float>, _ phasePlane: Int) -> UnsafePointer<Float> {
    inputRow + t.phase * phasePlane + t.offset
  }

  @inline(__always)
  private static func tap(
    _ row: UnsafeMutablePointer<Float>, _ w: Float, _ source: UnsafePointer<Float>, _ lo: Int, _ hi: Int
  ) {
    var ow = lo
    while ow < hi {
      row[ow] += w * source[ow]
      ow += 1
    }
  }

  /// Column phase p of row h goes to `phases + (p·rows + h)·phaseWidth`.
  private static func deinterleave(
    _ x: UnsafePointer<Float>, rows: Int, width: Int, stride: Int, into phases: UnsafeMutablePointer<Float>,
    phaseWidth: Int
  ) {
    for h in 0..<rows {
      let src = x + h * width
      var start = 0
      if stride == 2 {
        // Eight even and eight odd columns per 16-wide load.
        let (even, odd) = (phases + h * phaseWidth, phases + (rows + h) * phaseWidth)
        while 2 * start + 16 <= width {
          let v = UnsafeRawPointer(src + 2 * start).loadUnaligned(as: SIMD16<Float>.self)
          UnsafeMutableRawPointer(even + start).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
          UnsafeMutableRawPointer(odd + start).storeBytes(of: v.oddHalf, as: SIMD8<Float>.self)
          start += 8
        }
      }
      for p in 0..<stride {
        let dst = phases + (p * rows + h) * phaseWidth
        var j = start
        var column = start &* stride &+ p
        while column < width {
          dst[j] = src[column]
          j &+= 1
          column &+= stride
        }
      }
    }
  }
}
