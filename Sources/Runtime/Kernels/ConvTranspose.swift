import Graph
import Linalg

/// ConvTranspose (float32, NCHW and its 1-D/3-D relatives): groups, strides, dilations, explicit
/// pads, output_padding, output_shape and auto_pad SAME_UPPER/SAME_LOWER/VALID.
///
/// Each group of each image is one sgemm, `col[M/G·K, P] = W_gᵀ[M/G·K, C/G] · X_g[C/G, P]` (W is
/// [C, M/G, k…], so W_g is [C/G, M/G·K] row-major), followed by col2im, which adds each column
/// entry to the output position its input position and kernel tap reach. 1×1 stride-1 unpadded
/// kernels skip col2im: the product already is the output.
///
/// Output extents (per spatial axis, with `full = stride·(in − 1) + output_padding + (k − 1)·dilation + 1`):
/// explicit pads give `full − pads_begin − pads_end`; VALID gives `full`; SAME_* gives
/// `in · stride`, and an explicit `output_shape` that shape. In the last two the padding
/// `total = full − output` is split as the ONNX specification says: SAME_UPPER puts
/// `⌊total/2⌋` at the beginning, every other mode `total − ⌊total/2⌋`. A negative total (an output
/// larger than `full`) leaves the extra positions at the bias.
struct ConvTranspose: Kernel {
  let window: WindowAttributes
  let group: Int
  let outputPadding: [Int]?
  let outputShape: [Int]?
  /// The activation of a fused (`ai.rebirth`) ConvTranspose, applied to each image and group once made.
  let activation: FusedActivation?

  init(_ builder: KernelBuilder) throws {
    activation = try FusedActivation.fused(builder)
    window = try WindowAttributes(builder, hasDilations: true, hasCeilMode: false)
    group = try builder.int("group", default: 1)
    guard group >= 1 else { throw builder.attributeError("group", "must be positive, got \(group)") }
    outputPadding = try builder.optionalInts("output_padding")
    if let p = outputPadding, p.contains(where: { $0 < 0 }) {
      throw builder.attributeError("output_padding", "must not be negative, got \(p)")
    }
    outputShape = try builder.optionalInts("output_shape")
    if let s = outputShape, s.contains(where: { $0 < 0 }) {
      throw builder.attributeError("output_shape", "must not be negative, got \(s)")
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
    let (batch, channels, groupOutChannels) = (x.shape[0], x.shape[1], w.shape[1])
    guard w.shape[0] == channels, channels % group == 0 else {
      throw context.error(
        "input has \(channels) channels and weight \(describe(shape: w.shape)) with group \(group)")
    }
    let outChannels = groupOutChannels * group
    if let b = bias, b.shape != [outChannels] {
      throw context.error("bias shape \(describe(shape: b.shape)) is not [\(outChannels)]")
    }
    let kernel = Array(w.shape[2...])
    if let k = window.kernelShape, k != kernel {
      throw context.label.attributeError("kernel_shape", "\(k) disagrees with the weight's \(kernel)")
    }
    let g = try geometry(input: Array(x.shape[2...]), kernel: kernel, label: context.label)
    var y = NDArray(uninitialized: .float, shape: [batch, outChannels] + g.output)
    guard y.count > 0 else { return [y] }
    let (cg, mg) = (channels / group, groupOutChannels)
    let rows = mg * g.kernelSize
    guard max(rows, g.inputSize, cg) <= BLAS.maxDimension else { throw context.error("too large for BLAS") }
    let direct =
      g.kernel.allSatisfy { $0 == 1 } && g.strides.allSatisfy { $0 == 1 } && g.padsBegin.allSatisfy { $0 == 0 }
      && g.output == g.input
    let threads = context.threadCount

    x.withUnsafeBufferPointer(of: Float.self) { xp in
      w.withUnsafeBufferPointer(of: Float.self) { wp in
        y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
          NDArray.withOptionalPointer(bias, of: Float.self) { biasPointer in
            let (xs, ws, ys) = (xp.baseAddress!, wp.baseAddress!, yp.baseAddress!)
            let (inSize, outSize) = (g.inputSize, g.outputSize)
            withScratch(direct ? 0 : rows * inSize, of: Float.self) { col in
              for n in 0..<batch {
                for grp in 0..<group {
                  let xg = xs + (n * channels + grp * cg) * inSize
                  let wg = ws + grp * cg * rows
                  let yg = ys + (n * outChannels + grp * mg) * outSize
                  for m in 0..<mg {
                    (yg + m * outSize).update(repeating: biasPointer?[grp * mg + m] ?? 0, count: outSize)
                  }
                  if direct {
                    BLAS.sgemm(
                      transposeA: true, m: mg, n: inSize, k: cg, a: wg, lda: max(1, mg), b: xg, ldb: max(1, inSize),
                      beta: 1, c: yg, ldc: max(1, outSize))
                    activation?.apply(yg, count: mg * outSize, threads: threads)
                    continue
                  }
                  BLAS.sgemm(
                    transposeA: true, m: rows, n: inSize, k: cg, a: wg, lda: max(1, rows), b: xg, ldb: max(1, inSize),
                    c: col, ldc: max(1, inSize))
                  let grain = max(1, 4096 / max(g.kernelSize * inSize, 1))
                  Parallel.forEach(count: mg, threads: threads, grain: grain) { r in
                    Col2Im.accumulate(UnsafePointer(col), channels: r, geometry: g, into: yg)
                  }
                  activation?.apply(yg, count: mg * outSize, threads: threads)
                }
              }
            }
          }
        }
      }
    }
    return [y]
  }

  /// The output extents and begin pads for spatial input extents `input` and window `kernel`.
  func geometry(input: [Int], kernel: [Int], label: NodeLabel) throws(RuntimeError) -> TransposedWindow {
    let rank = input.count
    func check(_ values: [Int]?, _ name: String, count: Int) throws(RuntimeError) -> [Int]? {
      guard let values else { return nil }
      guard values.count == count else {
        throw label.attributeError(name, "has \(values.count) values; the input has \(rank) spatial axes")
      }
      return values
    }
    let strides = try check(window.strides, "strides", count: rank) ?? Array(repeating: 1, count: rank)
    let dilations = try check(window.dilations, "dilations", count: rank) ?? Array(repeating: 1, count: rank)
    let outputPadding = try check(outputPadding, "output_padding", count: rank) ?? Array(repeating: 0, count: rank)
    let pads = try check(window.pads, "pads", count: 2 * rank)
    // output_shape may also carry the batch and channel extents.
    var requested: [Int]? = nil
    if let s = outputShape {
      guard s.count == rank || s.count == rank + 2 else {
        throw label.attributeError("output_shape", "has \(s.count) values; the input has \(rank) spatial axes")
      }
      requested = Array(s.suffix(rank))
    }
    var begin = [Int](repeating: 0, count: rank)
    var output = [Int](repeating: 0, count: rank)
    for i in 0..<rank {
      let full = strides[i] * (input[i] - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1
      var target: Int? = requested?[i]
      if target == nil && (window.autoPad == .sameUpper || window.autoPad == .sameLower) {
        target = input[i] * strides[i]
      }
      if let target {
        let total = full - target
        let half = total >= 0 ? total / 2 : -((-total + 1) / 2)  // ⌊total/2⌋
        begin[i] = window.autoPad == .sameUpper ? half : total - half
        output[i] = target
      } else if window.autoPad == .valid {
        output[i] = full
      } else {
        begin[i] = pads?[i] ?? 0
        output[i] = full - begin[i] - (pads?[i + rank] ?? 0)
      }
      guard output[i] >= 0 else {
        throw label.error("the pads exceed the output (\(full) wide before padding) on axis \(i + 2)")
      }
    }
    return TransposedWindow(
      input: input, kernel: kernel, strides: strides, dilations: dilations, padsBegin: begin, output: output)
  }
}

/// A resolved transposed-convolution window: input position `i` under kernel tap `t` reaches output
/// position `i·stride − padBegin + t·dilation` (per spatial axis) when that lies in `0..<output`.
struct TransposedWindow: Sendable, Equatable {
  let input: [Int]
  let kernel: [Int]
  let strides: [Int]
  let dilations: [Int]
  let padsBegin: [Int]
  let output: [Int]

  var rank: Int { input.count }
  var inputSize: Int { ShapeArithmetic.product(input) }
  var outputSize: Int { ShapeArithmetic.product(output) }
  var kernelSize: Int { ShapeArithmetic.product(kernel) }
}

/// The adjoint of `Im2Col`: accumulates a column matrix into the output planes,
///
///     y[c, output position of input position p under kernel tap k] += col[(c·K + k)·P + p]
///
/// for K = kernel size and P = input size (taps falling outside the output are dropped), over any
/// number of spatial axes. Each input row along the last axis is one contiguous (or strided) add.
enum Col2Im {
  /// `col` and `y` point at channel 0 (of the group); channels `channels` are accumulated.
  static func accumulate(
    _ col: UnsafePointer<Float>, channels: Range<Int>, geometry g: TransposedWindow, into y: UnsafeMutablePointer<Float>
  ) {
    let rank = g.rank
    let last = rank - 1
    let (inW, outW) = (g.input[last], g.output[last])
    let (strideW, dilationW, padW) = (g.strides[last], g.dilations[last], g.padsBegin[last])
    let outputStrides = ShapeArithmetic.strides(g.output)
    let rowsPerTap = g.inputSize / max(inW, 1)
    let (kernelSize, inputSize, outputSize) = (g.kernelSize, g.inputSize, g.outputSize)
    // For each tap along the last axis, the input range whose output is inside.
    let lastTaps = Im2Col.tapRanges(
      kernel: g.kernel[last], dilation: dilationW, pad: padW, stride: strideW, steps: inW, extent: outW)
    var tap = [Int](repeating: 0, count: rank)
    var position = [Int](repeating: 0, count: max(rank - 1, 0))
    for c in channels {
      let plane = y + c * outputSize
      for k in 0..<kernelSize {
        var rest = k
        for d in stride(from: last, through: 0, by: -1) {
          tap[d] = rest % g.kernel[d]
          rest /= g.kernel[d]
        }
        let (lo, hi) = lastTaps[tap[last]]
        let offsetW = tap[last] * dilationW - padW
        var row = col + (c * kernelSize + k) * inputSize
        for d in 0..<position.count { position[d] = 0 }
        for _ in 0..<rowsPerTap {
          // Output offset of this input row along the outer axes, or nil outside the output.
          var base = 0
          var inside = lo < hi
          for d in 0..<(rank - 1) where inside {
            let o = position[d] * g.strides[d] - g.padsBegin[d] + tap[d] * g.dilations[d]
            if o < 0 || o >= g.output[d] {
              inside = false
            } else {
              base += o * outputStrides[d]
            }
          }
          if inside {
            let target = plane + base + offsetW
            if strideW == 1 {
              for i in lo..<hi { target[i] += row[i] }
            } else {
              for i in lo..<hi { target[i * strideW] += row[i] }
            }
          }
          row += inW
          var d = rank - 2
          while d >= 0 {
            position[d] += 1
            if position[d] < g.input[d] { break }
            position[d] = 0
            d -= 1
          }
        }
      }
    }
  }
}
