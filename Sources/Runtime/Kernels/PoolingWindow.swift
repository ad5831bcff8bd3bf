/// The pooling window of an input of one to three spatial axes, as three axes (depth, height,
/// width), missing leading axes being of extent 1, with the taps of each output position that fall
/// inside the input precomputed per axis.
struct PoolingWindow {
  let planes: Int
  let input: (d: Int, h: Int, w: Int)
  let output: (d: Int, h: Int, w: Int)
  let strides: (d: Int, h: Int, w: Int)
  let dilations: (d: Int, h: Int, w: Int)
  let pads: (d: Int, h: Int, w: Int)
  let taps: (d: [(first: Int, end: Int)], h: [(first: Int, end: Int)], w: [(first: Int, end: Int)])
  let geometry: WindowGeometry

  init(planes: Int, _ g: WindowGeometry) {
    self.planes = planes
    geometry = g
    func axis<T>(_ values: [T], _ i: Int, _ missing: T) -> T {
      let k = i - (3 - g.rank)
      return k >= 0 ? values[k] : missing
    }
    func triple(_ values: [Int], _ missing: Int) -> (Int, Int, Int) {
      (axis(values, 0, missing), axis(values, 1, missing), axis(values, 2, missing))
    }
    input = triple(g.input, 1)
    output = triple(g.output, 1)
    strides = triple(g.strides, 1)
    dilations = triple(g.dilations, 1)
    pads = triple(g.padsBegin, 0)
    let all = (0..<g.rank).map { g.validTaps(axis: $0) }
    taps = (axis(all, 0, [(0, 1)]), axis(all, 1, [(0, 1)]), axis(all, 2, [(0, 1)]))
  }

  var inputPlane: Int { input.d * input.h * input.w }
  var outputPlane: Int { output.d * output.h * output.w }
}

/// How separable pooling combines taps.
protocol PoolCombine {
  static var identity: Float { get }
  static func combine(_ a: Float, _ b: Float) -> Float
}

enum MaxCombine: PoolCombine {
  static var identity: Float { -.infinity }
  @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { b > a ? b : a }
}

enum SumCombine: PoolCombine {
  static var identity: Float { 0 }
  @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { a + b }
}

/// Max and sum pooling are separable: reduce along the width of every row, then along the height
/// (whole output rows at a time, a contiguous loop), then along the depth. Each output costs the
/// sum of the window's extents instead of their product.
enum SeparablePooling<Combine: PoolCombine> {
  static func run(_ p: PoolingWindow, _ x: NDArray, _ y: inout NDArray, divisors: [[Int]]?, threads: Int) {
    let (d, h, w) = p.input
    let (od, oh, ow) = p.output
    // Scaling per output, the product of the per-axis divisors (average pooling).
    let scale: [Float]? = divisors.map { perAxis in
      let axes = Array(repeating: [1], count: 3 - perAxis.count) + perAxis
      var s: [Float] = []
      s.reserveCapacity(p.outputPlane)
      for a in 0..<od {
        for b in 0..<oh {
          for c in 0..<ow { s.append(1 / Float(axes[0][a] * axes[1][b] * axes[2][c])) }
        }
      }
      return s
    }
    let hTaps = p.taps.h
    let dTaps = p.taps.d
    // Per horizontal tap t: output columns o whose input column o·s + t·dilation − pad is inside.
    let sW = p.strides.w
    let columnTaps: [(lo: Int, hi: Int, offset: Int)] = (0..<p.geometry.kernel[p.geometry.rank - 1]).map { t in
      let offset = t * p.dilations.w - p.pads.w
      let lo = offset >= 0 ? 0 : min(ow, (-offset + sW - 1) / sW)
      let hi = w - offset <= 0 ? 0 : min(ow, (w - offset + sW - 1) / sW)
      return (lo, max(lo, hi), offset)
    }
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        Parallel.forEach(count: p.planes, threads: threads, grain: 4) { planes in
          withScratch(d * h * ow + d * oh * ow, of: Float.self) { scratch in
            let (afterW, afterH) = (scratch, scratch + d * h * ow)
            for plane in planes {
              let input = xs + plane * p.inputPlane
              let output = ys + plane * p.outputPlane
              // Width: every input row, one pass per tap over the outputs it reaches.
              for row in 0..<(d * h) {
                let src = input + row * w
                let dst = afterW + row * ow
                dst.update(repeating: Combine.identity, count: ow)
                for tap in columnTaps {
                  let source = src + tap.offset
                  if sW == 1 {
                    for o in tap.lo..<tap.hi { dst[o] = Combine.combine(dst[o], source[o]) }
                  } else {
                    for o in tap.lo..<tap.hi { dst[o] = Combine.combine(dst[o], source[o &* sW]) }
                  }
                }
              }
              // Height: whole rows; into the output directly when there is no depth axis.
              let heightOut = od == 1 && d == 1 ? output : afterH
              for z in 0..<d {
                for o in 0..<oh {
                  let dst = heightOut + (z * oh + o) * ow
                  reduceRows(
                    afterW + z * h * ow, rowLength: ow, taps: hTaps[o], start: o * p.strides.h - p.pads.h,
                    step: p.dilations.h, into: dst)
                }
              }
              // Depth: whole planes.
              if !(od == 1 && d == 1) {
                for o in 0..<od {
                  reduceRows(
                    afterH, rowLength: oh * ow, taps: dTaps[o], start: o * p.strides.d - p.pads.d,
                    step: p.dilations.d, into: output + o * oh * ow)
                }
              }
              if let scale {
                for i in 0..<p.outputPlane { output[i] *= scale[i] }
              }
            }
          }
        }
      }
    }
  }

  /// `dst[i] = combine over taps t of src[(start + t·step)·rowLength + i]`.
  @inline(__always)
  private static func reduceRows(
    _ src: UnsafePointer<Float>, rowLength: Int, taps: (first: Int, end: Int), start: Int, step: Int,
    into dst: UnsafeMutablePointer<Float>
  ) {
    guard taps.first < taps.end else {
      dst.update(repeating: Combine.identity, count: rowLength)
      return
    }
    dst.update(from: src + (start + taps.first * step) * rowLength, count: rowLength)
    for t in (taps.first + 1)..<taps.end {
      let row = src + (start + t * step) * rowLength
      for i in 0..<rowLength { dst[i] = Combine.combine(dst[i], row[i]) }
    }
  }
}
