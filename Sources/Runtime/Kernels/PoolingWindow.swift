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
  /// `combine` lane by lane (the same result as the scalar form on every lane, NaN included).
  static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float>
}

enum MaxCombine: PoolCombine {
  static var identity: Float { -.infinity }
  @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { b > a ? b : a }
  @inline(__always) static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    a.replacing(with: b, where: b .> a)
  }
}

enum SumCombine: PoolCombine {
  static var identity: Float { 0 }
  @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { a + b }
  @inline(__always) static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a + b }
}

@inline(__always) private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
  UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
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
    // The output columns every tap reaches (no bounds to check there), and whether that interior
    // takes the fused vector path: adjacent taps (dilation 1) and stride 1 or 2.
    let interior = (
      lo: columnTaps.map(\.lo).max() ?? 0, hi: max(columnTaps.map(\.lo).max() ?? 0, columnTaps.map(\.hi).min() ?? 0)
    )
    let fused = p.dilations.w == 1 && (sW == 1 || sW == 2) && columnTaps.count <= 4 && interior.lo < interior.hi
    // The per-axis tap tables are read through buffer pointers inside the loops (no array
    // retain/release per row).
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        columnTaps.withUnsafeBufferPointer { columnTaps in
          hTaps.withUnsafeBufferPointer { hTaps in
            dTaps.withUnsafeBufferPointer { dTaps in
              let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
              let grain = max(1, 4096 / max(p.inputPlane, 1))
              Parallel.forEach(count: p.planes, threads: threads, grain: grain) { planes in
                withScratch(d * h * ow + d * oh * ow, of: Float.self) { scratch in
                  let (afterW, afterH) = (scratch, scratch + d * h * ow)
                  for plane in planes {
                    let input = xs + plane * p.inputPlane
                    let output = ys + plane * p.outputPlane
                    // Width: every input row, one pass per tap over the outputs it reaches.
                    for row in 0..<(d * h) {
                      widthPass(
                        input + row * w, width: w, into: afterW + row * ow, outputs: ow, columnTaps,
                        interior: interior, stride: sW, fused: fused)
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
                      scale.withUnsafeBufferPointer { sp in
                        let factors = sp.baseAddress!
                        var i = 0
                        while i + 8 <= p.outputPlane {
                          store8(load8(output + i) * load8(factors + i), output + i)
                          i += 8
                        }
                        while i < p.outputPlane {
                          output[i] *= factors[i]
                          i += 1
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// One input row (`w` wide) reduced along the width: `dst[o] = combine over taps of
  /// src[o·stride + offset]` for the taps inside the row, `o` in `0..<ow`. The interior (every tap
  /// inside) is one fused pass, 8 outputs at a time, when `fused`; the border columns go tap by tap.
  @inline(__always)
  private static func widthPass(
    _ src: UnsafePointer<Float>, width w: Int, into dst: UnsafeMutablePointer<Float>, outputs ow: Int,
    _ taps: UnsafeBufferPointer<(lo: Int, hi: Int, offset: Int)>, interior: (lo: Int, hi: Int), stride sW: Int,
    fused: Bool
  ) {
    guard fused else {
      dst.update(repeating: Combine.identity, count: ow)
      borderTaps(src, dst, taps, skip: 0..<0, stride: sW)
      return
    }
    let (lo, hi) = interior
    let offset = taps[0].offset  // tap t reads src[o·stride + offset + t]
    let base = src + offset
    let count = taps.count
    let identity = SIMD8<Float>(repeating: Combine.identity)
    var o = lo
    if sW == 1 {
      while o + 8 <= hi {
        let s = base + o
        var v = Combine.combine(identity, load8(s))
        for t in 1..<count { v = Combine.combine(v, load8(s + t)) }
        store8(v, dst + o)
        o += 8
      }
    } else {
      // Stride 2: taps 0 and 1 are the even and odd lanes of one 16-wide load, taps 2 and 3 those
      // of a second load two columns on. Every lane loaded must lie inside the row.
      let lastLane = count > 2 ? 17 : 15
      while o + 8 <= hi && offset + 2 * o + lastLane < w {
        let s = base + 2 * o
        let first = UnsafeRawPointer(s).loadUnaligned(as: SIMD16<Float>.self)
        var v = Combine.combine(identity, first.evenHalf)
        if count > 1 { v = Combine.combine(v, first.oddHalf) }
        if count > 2 {
          let second = UnsafeRawPointer(s + 2).loadUnaligned(as: SIMD16<Float>.self)
          v = Combine.combine(v, second.evenHalf)
          if count > 3 { v = Combine.combine(v, second.oddHalf) }
        }
        store8(v, dst + o)
        o += 8
      }
    }
    while o < hi {
      let s = base + o * sW
      var v = Combine.combine(Combine.identity, s[0])
      for t in 1..<count { v = Combine.combine(v, s[t]) }
      dst[o] = v
      o += 1
    }
    // Border columns: the outputs before and after the interior, tap by tap.
    if lo > 0 { dst.update(repeating: Combine.identity, count: lo) }
    if hi < ow { (dst + hi).update(repeating: Combine.identity, count: ow - hi) }
    borderTaps(src, dst, taps, skip: lo..<hi, stride: sW)
  }

  @inline(__always)
  private static func borderTaps(
    _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
    _ taps: UnsafeBufferPointer<(lo: Int, hi: Int, offset: Int)>, skip: Range<Int>, stride sW: Int
  ) {
    for tap in taps {
      let source = src + tap.offset
      let before = tap.lo..<max(tap.lo, min(tap.hi, skip.lowerBound))
      let after = max(tap.lo, skip.upperBound)..<max(tap.lo, skip.upperBound, tap.hi)
      // Two ranges, not an array of them: an array literal here was a heap allocation (and its
      // release) per tap and input row.
      if skip.isEmpty {
        combine(source, into: dst, tap.lo..<tap.hi, stride: sW)
      } else {
        combine(source, into: dst, before, stride: sW)
        combine(source, into: dst, after, stride: sW)
      }
    }
  }

  /// `dst[o] = combine(dst[o], source[o·stride])` for `o` in `part`.
  @inline(__always)
  private static func combine(
    _ source: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, _ part: Range<Int>, stride sW: Int
  ) {
    if sW == 1 {
      for o in part { dst[o] = Combine.combine(dst[o], source[o]) }
    } else {
      for o in part { dst[o] = Combine.combine(dst[o], source[o &* sW]) }
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
    let first = src + (start + taps.first * step) * rowLength
    let rest = taps.end - taps.first - 1
    if rest == 0 {
      dst.update(from: first, count: rowLength)
      return
    }
    // Two rows at a time into dst: one pass for the common 2- and 3-tap windows.
    let second = first + step * rowLength
    let third: UnsafePointer<Float>? = rest >= 2 ? second + step * rowLength : nil
    var i = 0
    if let third {
      while i + 8 <= rowLength {
        store8(Combine.combine(Combine.combine(load8(first + i), load8(second + i)), load8(third + i)), dst + i)
        i += 8
      }
      while i < rowLength {
        dst[i] = Combine.combine(Combine.combine(first[i], second[i]), third[i])
        i += 1
      }
    } else {
      while i + 8 <= rowLength {
        store8(Combine.combine(load8(first + i), load8(second + i)), dst + i)
        i += 8
      }
      while i < rowLength {
        dst[i] = Combine.combine(first[i], second[i])
        i += 1
      }
    }
    if rest <= 2 { return }
    for t in (taps.first + 3)..<taps.end {
      let row = src + (start + t * step) * rowLength
      i = 0
      while i + 8 <= rowLength {
        store8(Combine.combine(load8(dst + i), load8(row + i)), dst + i)
        i += 8
      }
      while i < rowLength {
        dst[i] = Combine.combine(dst[i], row[i])
        i += 1
      }
    }
  }
}
