/// Lowers a convolution's input to a matrix, so that the convolution becomes one sgemm:
///
///     col[(c·K + k)·P + p] = x[c, input position of output position p under kernel tap k]
///
/// (0 where the tap falls in the padding), for K = kernel size and P = output size, over any number
/// of spatial axes. Each output row along the last axis is one contiguous (or strided) copy with
/// zero fill at its ends; no per-element bounds checks.
enum Im2Col {
  /// For each kernel tap `t` along one axis, the range of strided positions `i` in `0..<steps`
  /// whose dense position `i·stride + t·dilation − pad` lies in `0..<extent`. Im2Col walks output
  /// positions (strided) over the input (dense); its adjoint `Col2Im` walks input positions over
  /// the output.
  static func tapRanges(kernel: Int, dilation: Int, pad: Int, stride: Int, steps: Int, extent: Int) -> [(Int, Int)] {
    (0..<kernel).map { t in
      let offset = t * dilation - pad
      let lo = offset >= 0 ? 0 : min(steps, (-offset + stride - 1) / stride)
      let hi = extent - offset <= 0 ? 0 : min(steps, (extent - offset + stride - 1) / stride)
      return (lo, max(lo, hi))
    }
  }

  static func lower(
    _ x: UnsafePointer<Float>, channels: Range<Int>, geometry g: WindowGeometry, into col: UnsafeMutablePointer<Float>
  ) {
    let rank = g.rank
    let last = rank - 1
    let (outW, inW) = (g.output[last], g.input[last])
    let (strideW, dilationW, padW) = (g.strides[last], g.dilations[last], g.padsBegin[last])
    let inputStrides = ShapeArithmetic.strides(g.input)
    let rowsPerTap = g.outputSize / max(outW, 1)
    let kernelSize = g.kernelSize
    let outputSize = g.outputSize
    // For each tap along the last axis, the output range whose input is inside.
    let lastTaps = tapRanges(
      kernel: g.kernel[last], dilation: dilationW, pad: padW, stride: strideW, steps: outW, extent: inW)
    var tap = [Int](repeating: 0, count: rank)
    var position = [Int](repeating: 0, count: max(rank - 1, 0))
    for c in channels {
      let plane = x + c * g.inputSize
      for k in 0..<kernelSize {
        // Kernel tap coordinates of k.
        var rest = k
        for d in stride(from: last, through: 0, by: -1) {
          tap[d] = rest % g.kernel[d]
          rest /= g.kernel[d]
        }
        let (lo, hi) = lastTaps[tap[last]]
        let offsetW = tap[last] * dilationW - padW
        var row = col + (c - channels.lowerBound) * kernelSize * outputSize + k * outputSize
        for d in 0..<position.count { position[d] = 0 }
        for _ in 0..<rowsPerTap {
          // Input offset of this output row along the outer axes, or nil inside the padding.
          var base = 0
          var inside = true
          for d in 0..<(rank - 1) {
            let i = position[d] * g.strides[d] - g.padsBegin[d] + tap[d] * g.dilations[d]
            if i < 0 || i >= g.input[d] {
              inside = false
              break
            }
            base += i * inputStrides[d]
          }
          if inside {
            if lo > 0 { row.update(repeating: 0, count: lo) }
            let source = plane + base + offsetW
            if strideW == 1 {
              (row + lo).update(from: source + lo, count: hi - lo)
            } else {
              for o in lo..<hi { row[o] = source[o * strideW] }
            }
            if hi < outW { (row + hi).update(repeating: 0, count: outW - hi) }
          } else {
            row.update(repeating: 0, count: outW)
          }
          row += outW
          // Next output row.
          var d = rank - 2
          while d >= 0 {
            position[d] += 1
            if position[d] < g.output[d] { break }
            position[d] = 0
            d -= 1
          }
        }
      }
    }
  }
}
