import Graph

/// Resize (opsets 10–19) and the deprecated Upsample: each output coordinate is mapped back to the
/// input (`coordinate_transformation_mode`) and sampled there, by the nearest element (any element
/// type; `nearest_mode` rounds) or by linear interpolation between the two neighbours on every
/// resized axis (float and double; bilinear in one pass when the last two axes are the resized
/// ones, else one separable pass per axis). Coordinates are computed in float32, as onnxruntime does.
///
/// Output extents are `floor(extent × scale)` for the `scales` input, or the `sizes` input (then
/// the scale is `size / extent`, and `keep_aspect_ratio_policy` may make it one scale for all the
/// listed axes, opset 18). `axes` (opset 18) lists the axes `scales`, `sizes` and `roi` refer to.
/// Resize-10 and Upsample take only `scales` (an attribute in Upsample-7) and map coordinates
/// asymmetrically, nearest rounding down when enlarging and up when shrinking.
///
/// Not supported: mode `cubic`, and `antialias` = 1 in linear mode. `exclude_outside` and
/// `cubic_coeff_a` have no effect outside cubic mode.
struct Resize: Kernel {
  enum Coordinates: String {
    case halfPixel = "half_pixel", halfPixelSymmetric = "half_pixel_symmetric"
    case pytorchHalfPixel = "pytorch_half_pixel", alignCorners = "align_corners", asymmetric
    case tfHalfPixelForNN = "tf_half_pixel_for_nn", tfCropAndResize = "tf_crop_and_resize"
  }

  enum Rounding: String {
    case roundPreferFloor = "round_prefer_floor", roundPreferCeil = "round_prefer_ceil", floor, ceil
    /// Resize-10 and Upsample: floor when enlarging, ceil when shrinking.
    case legacy
  }

  enum AspectRatioPolicy: String { case stretch, notLarger = "not_larger", notSmaller = "not_smaller" }

  let linear: Bool
  let coordinates: Coordinates
  let rounding: Rounding
  let policy: AspectRatioPolicy
  let axes: [Int]?
  let extrapolation: Float
  /// Resize-10 and Upsample: inputs (X, scales).
  let legacy: Bool
  /// Upsample: scales must be at least 1.
  let upsample: Bool
  /// The `scales` attribute of Upsample-7.
  let attributeScales: [Float]?

  init(_ builder: KernelBuilder) throws { try self.init(builder, upsample: false) }

  init(_ builder: KernelBuilder, upsample: Bool) throws {
    self.upsample = upsample
    let mode = try builder.string("mode", default: "nearest")
    switch mode {
    case "nearest": linear = false
    case "linear": linear = true
    default: throw builder.unsupported("mode", "'\(mode)'")
    }
    legacy = upsample || builder.opset < 11
    attributeScales = upsample && builder.opset < 9 ? try builder.optionalFloats("scales") : nil
    if upsample && builder.opset < 9 && attributeScales == nil { throw builder.attributeError("scales", "is required") }
    if legacy {
      (coordinates, rounding, policy, axes, extrapolation) = (.asymmetric, .legacy, .stretch, nil, 0)
      return
    }
    let c = try builder.string("coordinate_transformation_mode", default: "half_pixel")
    guard let coordinates = Coordinates(rawValue: c) else {
      throw builder.unsupported("coordinate_transformation_mode", "'\(c)'")
    }
    self.coordinates = coordinates
    let r = try builder.string("nearest_mode", default: "round_prefer_floor")
    guard let rounding = Rounding(rawValue: r), rounding != .legacy else {
      throw builder.unsupported("nearest_mode", "'\(r)'")
    }
    self.rounding = rounding
    extrapolation = try builder.float("extrapolation_value", default: 0)
    builder.ignore("exclude_outside", "cubic_coeff_a")  // cubic mode only
    if builder.opset >= 18 {
      axes = try builder.optionalInts("axes")
      let p = try builder.string("keep_aspect_ratio_policy", default: "stretch")
      guard let policy = AspectRatioPolicy(rawValue: p) else {
        throw builder.unsupported("keep_aspect_ratio_policy", "'\(p)'")
      }
      self.policy = policy
      let antialias = try builder.int("antialias", default: 0)
      if antialias != 0 && linear { throw builder.unsupported("antialias", antialias) }
    } else {
      (axes, policy) = (nil, .stretch)
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let rank = x.rank
    let listed = try DataMovement.normalize(axes: axes ?? Array(0..<rank), rank: rank, "axis", context)
    var scales: [Float]? = nil
    var sizes: [Int]? = nil
    var roi: [Float]? = nil
    if legacy {
      if let attributeScales {
        scales = attributeScales
      } else {
        let s = try context.input(1)
        guard s.dtype == .float else { throw context.error("scales must be float; got \(s.dtype)") }
        scales = s.scalars(as: Float.self)
      }
    } else {
      if let r = context.optionalInput(1), r.count > 0, coordinates == .tfCropAndResize {
        switch r.dtype {
        case .float: roi = r.scalars(as: Float.self)
        case .double: roi = r.scalars(as: Double.self).map { Float($0) }
        default: throw context.error("roi must be float or double; got \(r.dtype)")
        }
      }
      if let s = context.optionalInput(2), s.count > 0 {
        guard s.dtype == .float else { throw context.error("scales must be float; got \(s.dtype)") }
        scales = s.scalars(as: Float.self)
      }
      if let s = context.optionalInput(3), s.count > 0 {
        sizes = try DataMovement.integerInput(context, 3, name: "sizes", int32: false)
      }
    }
    guard (scales == nil) != (sizes == nil) else {
      throw context.error("exactly one of scales and sizes must be given")
    }

    // Per axis: the scale and the output extent.
    var scale = [Float](repeating: 1, count: rank)
    var shape = x.shape
    if let scales {
      guard scales.count == listed.count else {
        throw context.error("scales \(scales) must have one entry per resized axis (\(listed.count))")
      }
      for (k, a) in listed.enumerated() {
        let s = scales[k]
        guard s > 0, s.isFinite, !upsample || s >= 1 else {
          throw context.error("scale \(s) of axis \(a) must be \(upsample ? "at least 1" : "positive")")
        }
        let extent = (Float(x.shape[a]) * s).rounded(.down)
        guard extent < Float(1 << 48) else { throw context.error("scale \(s) of axis \(a) is too large") }
        scale[a] = s
        shape[a] = Int(extent)
      }
    } else if let sizes {
      guard sizes.count == listed.count, sizes.allSatisfy({ $0 >= 0 }) else {
        throw context.error("sizes \(sizes) must be one non-negative extent per resized axis (\(listed.count))")
      }
      for (k, a) in listed.enumerated() {
        scale[a] = Float(sizes[k]) / Float(x.shape[a])
        shape[a] = sizes[k]
      }
      if policy != .stretch {
        let ratios = listed.map { scale[$0] }
        let common = (policy == .notLarger ? ratios.min() : ratios.max()) ?? 1
        for a in listed {
          scale[a] = common
          shape[a] = Int((common * Float(x.shape[a])).rounded(.toNearestOrAwayFromZero))
        }
      }
    }
    for a in 0..<rank where x.shape[a] == 0 && shape[a] > 0 {
      throw context.error("cannot resize axis \(a) of extent 0 to \(shape[a])")
    }
    var roiStart = [Float](repeating: 0, count: rank)
    var roiEnd = [Float](repeating: 1, count: rank)
    if coordinates == .tfCropAndResize {
      guard let roi, roi.count == 2 * listed.count else {
        throw context.error("tf_crop_and_resize needs roi with 2 × \(listed.count) values")
      }
      for (k, a) in listed.enumerated() {
        roiStart[a] = roi[k]
        roiEnd[a] = roi[k + listed.count]
      }
    }
    try DataMovement.checkAllocatable(x.dtype, shape, context)
    // Source coordinate of each output index, per axis.
    // (An axis of scale 1 keeping its extent is left alone, as onnxruntime does, although
    // tf_half_pixel_for_nn would shift it by half an element.)
    let original = (0..<rank).map { a in
      (0..<shape[a]).map { o in
        scale[a] == 1 && shape[a] == x.shape[a] && coordinates != .tfCropAndResize
          ? Float(o)
          : sourceCoordinate(o, input: x.shape[a], output: shape[a], scale: scale[a], roi: (roiStart[a], roiEnd[a]))
      }
    }
    let extrapolates = coordinates == .tfCropAndResize
    if !linear {
      return [try nearest(x, shape: shape, original: original, scale: scale, extrapolates: extrapolates, context)]
    }
    // Linear: per axis, the two neighbours, the second's weight, and whether outside (extrapolated).
    var taps: [[LinearTap]] = []
    for a in 0..<rank {
      let n = x.shape[a]
      taps.append(
        original[a].map { c in
          if extrapolates && (c < 0 || c > Float(n - 1)) { return LinearTap(i0: 0, i1: 0, w1: 0, outside: true) }
          let clamped = min(max(c, 0), Float(n - 1))
          let i0 = min(Int(clamped), n - 1)
          return LinearTap(i0: i0, i1: min(i0 + 1, n - 1), w1: clamped - Float(i0), outside: false)
        })
    }
    let resized = (0..<rank).filter { a in
      shape[a] != x.shape[a] || taps[a].enumerated().contains { $1.outside || $1.i0 != $0 || $1.w1 != 0 }
    }
    switch x.dtype {
    case .float:
      let resize = LinearResize<Float>(taps: taps, resized: resized, extrapolation: extrapolation)
      return [try resize.run(x, shape, context)]
    case .double:
      let resize = LinearResize<Double>(taps: taps, resized: resized, extrapolation: Double(extrapolation))
      return [try resize.run(x, shape, context)]
    default: throw context.error("linear mode supports float and double; input 0 is \(x.dtype)")
    }
  }

  /// Where output index `o` of an axis samples the input.
  private func sourceCoordinate(_ o: Int, input: Int, output: Int, scale: Float, roi: (Float, Float)) -> Float {
    let x = Float(o)
    let (lengthIn, lengthOut) = (Float(input), Float(output))
    switch coordinates {
    case .halfPixel: return (x + 0.5) / scale - 0.5
    case .halfPixelSymmetric:
      let adjustment = lengthOut / (scale * lengthIn)
      let offset = lengthIn / 2 * (1 - adjustment)
      return offset + (x + 0.5) / scale - 0.5  // (onnxruntime's rounding differs here at exact halves)
    case .pytorchHalfPixel: return output > 1 ? (x + 0.5) / scale - 0.5 : 0
    case .alignCorners: return output == 1 ? 0 : x * (lengthIn - 1) / (lengthOut - 1)
    case .asymmetric: return x / scale
    case .tfHalfPixelForNN: return (x + 0.5) / scale
    case .tfCropAndResize:
      let (start, end) = roi
      return output > 1
        ? start * (lengthIn - 1) + x * (end - start) * (lengthIn - 1) / (lengthOut - 1)
        : Float(0.5 * Double(start + end) * Double(lengthIn - 1))
    }
  }

  private func nearest(
    _ x: NDArray, shape: [Int], original: [[Float]], scale: [Float], extrapolates: Bool, _ context: KernelContext
  ) throws(RuntimeError) -> NDArray {
    let strides = ShapeArithmetic.strides(x.shape)
    var anyOutside = false
    let maps = (0..<x.rank).map { a in
      let n = x.shape[a]
      return original[a].map { c -> Int in
        if extrapolates && (c < 0 || c > Float(n - 1)) {
          anyOutside = true
          return -1
        }
        let v = min(max(c, -1), Float(n))  // keeps the conversion in range; rounds the same after clamping
        let i: Float
        switch rounding {
        case .roundPreferFloor: i = v == Float(Int(v)) + 0.5 ? v.rounded(.down) : v.rounded()
        case .roundPreferCeil: i = v.rounded()
        case .floor: i = v.rounded(.down)
        case .ceil: i = v.rounded(.up)
        case .legacy: i = scale[a] < 1 ? v.rounded(.up) : v.rounded(.down)
        }
        return min(max(Int(i), 0), n - 1) * strides[a]
      }
    }
    var y = NDArray(uninitialized: x.dtype, shape: shape)
    guard y.count > 0 else { return y }
    var fill: NDArray? = nil
    if anyOutside {
      guard let f = DataMovement.scalar(Double(extrapolation), x.dtype) else {
        throw context.unsupportedType(x.dtype, input: 0)
      }
      fill = f
    }
    x.withUnsafeBytes { src in
      y.withUnsafeMutableBytes { dst in
        let job = { (fillBytes: UnsafeRawPointer?) in
          IndexMapCopy(
            maps: maps, source: src.baseAddress!, destination: dst.baseAddress!, fill: fillBytes,
            threads: context.threadCount
          ).run(elementSize: x.elementSize)
        }
        if let fill { fill.withUnsafeBytes { job($0.baseAddress) } } else { job(nil) }
      }
    }
    return y
  }
}

/// One output index of linear resizing along an axis: `(1 − w1)·x[i0] + w1·x[i1]`.
struct LinearTap {
  var i0: Int
  var i1: Int
  var w1: Float
  /// Outside the region of interest (tf_crop_and_resize): the extrapolation value.
  var outside: Bool
}

/// Linear resizing of float or double arrays, one separable pass per resized axis, or one
/// bilinear pass when the resized axes are the last two (per plane: the source rows resized
/// horizontally, then blended vertically).
struct LinearResize<T: BinaryFloatingPoint & TensorElement> {
  let taps: [[LinearTap]]
  let resized: [Int]
  let extrapolation: T

  func run(_ x: NDArray, _ shape: [Int], _ context: KernelContext) throws(RuntimeError) -> NDArray {
    let rank = x.rank
    if resized.isEmpty { return x }
    if shape.contains(0) { return NDArray(uninitialized: x.dtype, shape: shape) }
    if rank >= 2 && resized == [rank - 2, rank - 1] { return bilinear(x, shape, threads: context.threadCount) }
    var current = x
    for a in resized {
      var next = current.shape
      next[a] = shape[a]
      current = pass(current, axis: a, shape: next, threads: context.threadCount)
    }
    return current
  }

  /// Resizes axis `a` of `x` to `shape[a]`.
  private func pass(_ x: NDArray, axis a: Int, shape: [Int], threads: Int) -> NDArray {
    let outer = ShapeArithmetic.product(x.shape[..<a])
    let inner = ShapeArithmetic.product(x.shape[(a + 1)...])
    let (n, m) = (x.shape[a], shape[a])
    let taps = self.taps[a]
    let e = extrapolation
    var y = NDArray(uninitialized: x.dtype, shape: shape)
    x.withUnsafeBufferPointer(of: T.self) { src in
      y.withUnsafeMutableBufferPointer(of: T.self) { dst in
        let (s, d) = (src.baseAddress!, dst.baseAddress!)
        Parallel.forEach(count: outer * m, threads: threads, grain: max(1, StridedCopy.grain / inner)) { rows in
          var (o, k) = (rows.lowerBound / m, rows.lowerBound % m)
          for row in rows {
            let tap = taps[k]
            let out = d + row &* inner
            if tap.outside {
              out.update(repeating: e, count: inner)
            } else {
              let (w1, w0) = (T(tap.w1), 1 - T(tap.w1))
              let a0 = s + (o &* n &+ tap.i0) &* inner
              let a1 = s + (o &* n &+ tap.i1) &* inner
              for j in 0..<inner { out[j] = w0 * a0[j] + w1 * a1[j] }
            }
            k += 1
            if k == m { (o, k) = (o + 1, 0) }
          }
        }
      }
    }
    return y
  }

  /// Resizes the last two axes in one pass.
  private func bilinear(_ x: NDArray, _ shape: [Int], threads: Int) -> NDArray {
    let rank = x.rank
    let (h, w) = (x.shape[rank - 2], x.shape[rank - 1])
    let (oh, ow) = (shape[rank - 2], shape[rank - 1])
    let planes = ShapeArithmetic.product(shape[..<(rank - 2)])
    let rows = taps[rank - 2]
    let columns = taps[rank - 1]
    let e = extrapolation
    // Per output column: the two source columns and the second's weight (an outside column
    // reads column 0 and is overwritten).
    let x0 = columns.map { $0.i0 }
    let x1 = columns.map { $0.i1 }
    let wx = columns.map { T($0.w1) }
    let outsideColumns = columns.indices.filter { columns[$0].outside }
    var y = NDArray(uninitialized: x.dtype, shape: shape)
    x.withUnsafeBufferPointer(of: T.self) { src in
      y.withUnsafeMutableBufferPointer(of: T.self) { dst in
        x0.withUnsafeBufferPointer { x0 in
          x1.withUnsafeBufferPointer { x1 in
            wx.withUnsafeBufferPointer { wx in
              let (s, d) = (src.baseAddress!, dst.baseAddress!)
              if planes >= threads {
                // Plane by plane: the needed source rows resized horizontally once, then each
                // output row a vectorizable blend of two of them.
                var needed = [Bool](repeating: false, count: h)
                for t in rows where !t.outside { (needed[t.i0], needed[t.i1]) = (true, true) }
                let grain = max(1, StridedCopy.grain / max(oh * ow, 1))
                Parallel.forEach(count: planes, threads: threads, grain: grain) { range in
                  let scratch = UnsafeMutablePointer<T>.allocate(capacity: h * ow)
                  defer { scratch.deallocate() }
                  for p in range {
                    for r in 0..<h where needed[r] {
                      let row = s + (p &* h &+ r) &* w
                      let out = scratch + r &* ow
                      for ox in 0..<ow {
                        let w1 = wx[ox]
                        out[ox] = (1 - w1) * row[x0[ox]] + w1 * row[x1[ox]]
                      }
                    }
                    for oy in 0..<oh {
                      let r = rows[oy]
                      let out = d + (p &* oh &+ oy) &* ow
                      if r.outside {
                        out.update(repeating: e, count: ow)
                        continue
                      }
                      let (wy1, wy0) = (T(r.w1), 1 - T(r.w1))
                      let (top, bottom) = (scratch + r.i0 &* ow, scratch + r.i1 &* ow)
                      for ox in 0..<ow { out[ox] = wy0 * top[ox] + wy1 * bottom[ox] }
                      for ox in outsideColumns { out[ox] = e }
                    }
                  }
                }
                return
              }
              Parallel.forEach(count: planes * oh, threads: threads, grain: max(1, StridedCopy.grain / ow)) { lines in
                for line in lines {
                  let (p, oy) = (line / oh, line % oh)
                  let r = rows[oy]
                  let out = d + line &* ow
                  if r.outside {
                    out.update(repeating: e, count: ow)
                    continue
                  }
                  let (wy1, wy0) = (T(r.w1), 1 - T(r.w1))
                  let top = s + (p &* h &+ r.i0) &* w
                  let bottom = s + (p &* h &+ r.i1) &* w
                  for ox in 0..<ow {
                    let (a, b, w1) = (x0[ox], x1[ox], wx[ox])
                    let w0 = 1 - w1
                    out[ox] = wy0 * (w0 * top[a] + w1 * top[b]) + wy1 * (w0 * bottom[a] + w1 * bottom[b])
                  }
                  for ox in outsideColumns { out[ox] = e }
                }
              }
            }
          }
        }
      }
    }
    return y
  }
}

/// Upsample (opsets 7–9, deprecated in 10): Resize with asymmetric coordinates, scales of at
/// least 1 (an attribute in opset 7, an input from 9), mode nearest (rounding down) or linear.
struct Upsample: Kernel {
  let resize: Resize

  init(_ builder: KernelBuilder) throws { resize = try Resize(builder, upsample: true) }

  func run(_ context: KernelContext) throws -> [NDArray] { try resize.run(context) }
}
