import Graph

/// A 4-D kernel [out, in, h, w] in float64, for composing weights exactly before storing float32.
struct Kernel4: Sendable {
  let shape: [Int]
  var values: [Double]

  init?(_ tensor: Tensor) {
    guard tensor.shape.count == 4, let values = tensor.doubles, values.count == tensor.shape.reduce(1, *) else { return nil }
    shape = tensor.shape
    self.values = values
  }

  init(zeros shape: [Int]) {
    self.shape = shape
    values = Array(repeating: 0, count: shape.reduce(1, *))
  }

  var tensor: Tensor { Tensor(floats: values.map { Float($0) }, shape: shape) }

  /// The composite of applying `inner` (stride `innerStride`, dilation `innerDilation`), then
  /// `outer` (dilation `outerDilation`) on its output, group 1:
  ///
  ///     W[o, c, a·d2·s1 + u·d1, b·d2·s1 + v·d1] += Σ_m outer[o, m, a, b] · inner[m, c, u, v]
  static func compose(
    outer: Kernel4, outerDilation d2: [Int], inner: Kernel4, innerStride s1: [Int], innerDilation d1: [Int]
  ) -> Kernel4 {
    let (m2, m1, k2h, k2w) = (outer.shape[0], outer.shape[1], outer.shape[2], outer.shape[3])
    let (c, k1h, k1w) = (inner.shape[1], inner.shape[2], inner.shape[3])
    let kh = d2[0] * s1[0] * (k2h - 1) + d1[0] * (k1h - 1) + 1
    let kw = d2[1] * s1[1] * (k2w - 1) + d1[1] * (k1w - 1) + 1
    var result = Kernel4(zeros: [m2, c, kh, kw])
    result.values.withUnsafeMutableBufferPointer { w in
      outer.values.withUnsafeBufferPointer { w2 in
        inner.values.withUnsafeBufferPointer { w1 in
          for o in 0..<m2 {
            for m in 0..<m1 {
              for a in 0..<k2h {
                for b in 0..<k2w {
                  let x = w2[((o * m1 + m) * k2h + a) * k2w + b]
                  if x == 0 { continue }
                  for ci in 0..<c {
                    for u in 0..<k1h {
                      let row = ((o * c + ci) * kh + a * d2[0] * s1[0] + u * d1[0]) * kw + b * d2[1] * s1[1]
                      let source = ((m * c + ci) * k1h + u) * k1w
                      for v in 0..<k1w { w[row + v * d1[1]] += x * w1[source + v] }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return result
  }

  /// Each [o, c] slice fully convolved with a `box[0]`×`box[1]` box filter of weight 1/(kh·kw)
  /// whose taps sit `step` apart, the slice itself first dilated by `dilation` (an average pool
  /// after or before a kernel, channel by channel: any group).
  ///
  ///     W[o, c, a·step + u·dilation, b·step + v·dilation] += K[o, c, u, v] / (kh·kw)
  func boxed(_ box: [Int], step: [Int], dilation: [Int]) -> Kernel4 {
    let (m, c, k1h, k1w) = (shape[0], shape[1], shape[2], shape[3])
    let kh = dilation[0] * (k1h - 1) + 1 + (box[0] - 1) * step[0]
    let kw = dilation[1] * (k1w - 1) + 1 + (box[1] - 1) * step[1]
    let scale = 1 / Double(box[0] * box[1])
    var result = Kernel4(zeros: [m, c, kh, kw])
    for slice in 0..<(m * c) {
      for a in 0..<box[0] {
        for b in 0..<box[1] {
          for u in 0..<k1h {
            let row = (slice * kh + a * step[0] + u * dilation[0]) * kw + b * step[1]
            let source = (slice * k1h + u) * k1w
            for v in 0..<k1w { result.values[row + v * dilation[1]] += values[source + v] * scale }
          }
        }
      }
    }
    return result
  }
}
