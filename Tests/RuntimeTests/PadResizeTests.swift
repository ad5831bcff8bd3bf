import Graph
import Testing

@testable import Runtime

// Expected values are worked out by hand from the ONNX operator definitions (the coordinate
// formulas of Resize are spelled out next to each case); they were also checked against
// onnxruntime 1.32 during development, and the periodic reflection against numpy.pad.

private func int64s(_ values: [Int]) -> NDArray { NDArray(values.map { Int64($0) }, shape: [values.count]) }

/// Runs a one-output node on `threads` threads (graph inputs x0, x1, …; nil omits a slot).
private func runOnThreads(
  _ opType: String, _ inputs: [NDArray?], attributes: [Attribute], opset: Int = 19, threads: Int
) throws -> NDArray {
  var g = Graph(name: opType)
  var ids: [ValueID?] = []
  var feeds: [String: NDArray] = [:]
  for (i, x) in inputs.enumerated() {
    guard let x else {
      ids.append(nil)
      continue
    }
    ids.append(try g.addInput(name: "x\(i)", type: nil))
    feeds["x\(i)"] = x
  }
  let node = try g.addNode(opType: opType, name: "n", inputs: ids, outputs: ["y"], attributes: attributes)
  g.addOutput(g[node].outputs[0]!)
  let session = try Session(graph: g, opset: opset, options: SessionOptions(threadCount: threads))
  return try session.run(feeds, fetching: ["y"])[0]
}

@Suite struct PadTests {
  /// [[1, 2], [3, 4]]
  let x = floats([1, 2, 3, 4], [2, 2])

  func pad(_ x: NDArray, _ pads: [Int], mode: String = "constant", value: NDArray? = nil, axes: [Int]? = nil) throws
    -> NDArray
  {
    try run("Pad", [x, int64s(pads), value, axes.map(int64s)], attributes: [.string("mode", mode)], opset: 19)[0]
  }

  @Test func constant() throws {
    // pads: begin of axis 0, begin of axis 1, end of axis 0, end of axis 1.
    expectClose(try pad(x, [1, 0, 0, 1]), [0, 0, 0, 1, 2, 0, 3, 4, 0], shape: [3, 3])
    expectClose(try pad(x, [0, 1, 0, 0], value: NDArray(scalar: Float(9))), [9, 1, 2, 9, 3, 4], shape: [2, 3])
    let ints = try pad(NDArray([Int64(5), 6], shape: [2]), [1, 2], value: NDArray(scalar: Int64(-1)))
    #expect(ints.scalars(as: Int64.self) == [-1, 5, 6, -1, -1])
    let flags = try pad(NDArray([true], shape: [1]), [1, 1])
    #expect(flags.scalars(as: Bool.self) == [false, true, false])
  }

  /// The examples of the operator definition.
  @Test func definitionExamples() throws {
    let data = floats([1.0, 1.2, 2.3, 3.4, 4.5, 5.7], [3, 2])
    expectClose(
      try pad(data, [0, 2, 0, 0], mode: "reflect"), [1.0, 1.2, 1.0, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7],
      shape: [3, 4])
    expectClose(
      try pad(data, [0, 2, 0, 0], mode: "edge"), [1.0, 1.0, 1.0, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7],
      shape: [3, 4])
    expectClose(
      try pad(data, [2, 1, 1, 1], mode: "wrap"),
      [
        3.4, 2.3, 3.4, 2.3, 5.7, 4.5, 5.7, 4.5, 1.2, 1.0, 1.2, 1.0,
        3.4, 2.3, 3.4, 2.3, 5.7, 4.5, 5.7, 4.5, 1.2, 1.0, 1.2, 1.0,
      ],
      shape: [6, 4])
  }

  @Test func reflectOnEdges() throws {
    // Mirrored about the first and last elements, which are not repeated.
    expectClose(
      try pad(floats([1, 2, 3, 4], [4]), [3, 3], mode: "reflect"), [4, 3, 2, 1, 2, 3, 4, 3, 2, 1], shape: [10])
    // Beyond the extent the reflection continues periodically (numpy.pad: [2 1 2 3 2 1 2 3]).
    expectClose(try pad(floats([1, 2, 3], [3]), [5, 0], mode: "reflect"), [2, 1, 2, 3, 2, 1, 2, 3], shape: [8])
    // An extent of 1 repeats.
    expectClose(try pad(floats([7], [1]), [2, 1], mode: "reflect"), [7, 7, 7, 7], shape: [4])
    // On both axes of a matrix: rows reflect, then columns.
    expectClose(try pad(x, [1, 1, 0, 0], mode: "reflect"), [4, 3, 4, 2, 1, 2, 4, 3, 4], shape: [3, 3])
  }

  @Test func negativePadsCropFirst() throws {
    let v = floats([1, 2, 3, 4, 5], [5])
    let cropped = try pad(v, [-1, -1])
    expectClose(cropped, [2, 3, 4], shape: [3])
    expectClose(try pad(v, [-1, 2], mode: "edge"), [2, 3, 4, 5, 5, 5], shape: [6])
    expectClose(try pad(v, [-1, 2], mode: "reflect"), [2, 3, 4, 5, 4, 3], shape: [6])
    expectClose(try pad(v, [2, -1], mode: "wrap"), [3, 4, 1, 2, 3, 4], shape: [6])
    expectClose(try pad(v, [-2, 3]), [3, 4, 5, 0, 0, 0], shape: [6])
    #expect(try pad(v, [-3, -2]).shape == [0])
  }

  @Test func axesInputAndAttributes() throws {
    // Only the last axis: one column each side.
    expectClose(try pad(x, [1, 1], mode: "edge", axes: [-1]), [1, 1, 2, 2, 3, 3, 4, 4], shape: [2, 4])
    // Opset 10 and before: pads and value are attributes.
    let y = try run(
      "Pad", [x], attributes: [.ints("pads", [0, 0, 1, 0]), .float("value", 1.5), .string("mode", "constant")],
      opset: 10)[0]
    expectClose(y, [1, 2, 3, 4, 1.5, 1.5], shape: [3, 2])
  }

  @Test func errors() {
    expectRuntimeError(containing: "must hold 2 × 2 counts") { _ = try pad(x, [1, 1]) }
    expectRuntimeError(containing: "cannot pad axis 0 of no elements in edge mode") {
      _ = try pad(NDArray(zeros: .float, shape: [0]), [1, 0], mode: "edge")
    }
    expectRuntimeError(containing: "constant_value must be one float element") {
      _ = try pad(x, [0, 0, 1, 1], value: NDArray(scalar: Int64(1)))
    }
    expectRuntimeError(containing: "do not fit axis 0") { _ = try pad(floats([1, 2], [2]), [-3, 0]) }
    expectRuntimeError(containing: "attribute 'mode': unsupported value 'symmetric'") {
      _ = try pad(x, [0, 0, 0, 0], mode: "symmetric")
    }
  }
}

@Suite struct ResizeTests {
  let v = floats([10, 20, 30], [3])

  /// Resize with `scales` (or `sizes`) and attributes, at opset 19 unless given.
  func resize(
    _ x: NDArray, scales: [Float]? = nil, sizes: [Int]? = nil, roi: [Float]? = nil, opset: Int = 19,
    _ attributes: [Attribute]
  ) throws -> NDArray {
    let inputs: [NDArray?] = [
      x, roi.map { floats($0, [$0.count]) }, scales.map { floats($0, [$0.count]) }, sizes.map(int64s),
    ]
    return try run("Resize", inputs, attributes: attributes, opset: opset)[0]
  }

  func nearest(_ coordinates: String, _ rounding: String = "round_prefer_floor") -> [Attribute] {
    [
      .string("mode", "nearest"), .string("coordinate_transformation_mode", coordinates),
      .string("nearest_mode", rounding),
    ]
  }

  func linear(_ coordinates: String) -> [Attribute] {
    [.string("mode", "linear"), .string("coordinate_transformation_mode", coordinates)]
  }

  @Test func nearestCoordinateModes() throws {
    // half_pixel ×2: (o + ½)/2 − ½ = −0.25, 0.25, 0.75, 1.25, 1.75, 2.25.
    expectClose(try resize(v, scales: [2], nearest("half_pixel")), [10, 10, 20, 20, 30, 30], shape: [6])
    // asymmetric ×2: o/2 = 0, 0.5, 1, 1.5, 2, 2.5 (halves round down).
    expectClose(try resize(v, scales: [2], nearest("asymmetric")), [10, 10, 20, 20, 30, 30], shape: [6])
    // align_corners ×2: o·2/5 = 0, 0.4, 0.8, 1.2, 1.6, 2.
    expectClose(try resize(v, scales: [2], nearest("align_corners")), [10, 10, 20, 20, 30, 30], shape: [6])
    // tf_half_pixel_for_nn ×2: (o + ½)/2 = 0.25, 0.75, 1.25, 1.75, 2.25, 2.75 (2.75 clamps to 2).
    expectClose(try resize(v, scales: [2], nearest("tf_half_pixel_for_nn")), [10, 20, 20, 30, 30, 30], shape: [6])
    // To one element: pytorch_half_pixel samples 0, half_pixel (½)·3 − ½ = 1.
    expectClose(try resize(v, sizes: [1], nearest("pytorch_half_pixel")), [10], shape: [1])
    expectClose(try resize(v, sizes: [1], nearest("half_pixel")), [20], shape: [1])
    // tf_crop_and_resize, roi [0.5, 1.5]: 0.5·2 + o·1·2/2 = 1, 2, 3 (outside: the extrapolation value).
    expectClose(
      try resize(v, sizes: [3], roi: [0.5, 1.5], nearest("tf_crop_and_resize") + [.float("extrapolation_value", -1)]),
      [20, 30, -1], shape: [3])
  }

  @Test func nearestRounding() throws {
    // half_pixel ×2: −0.25, 0.25, 0.75, 1.25, 1.75, 2.25.
    expectClose(try resize(v, scales: [2], nearest("half_pixel", "floor")), [10, 10, 10, 20, 20, 30], shape: [6])
    expectClose(try resize(v, scales: [2], nearest("half_pixel", "ceil")), [10, 20, 20, 30, 30, 30], shape: [6])
    // asymmetric ×2: 0, 0.5, 1, 1.5, 2, 2.5: halves round up.
    expectClose(
      try resize(v, scales: [2], nearest("asymmetric", "round_prefer_ceil")), [10, 20, 20, 30, 30, 30], shape: [6])
    // Shrinking [10, 20, 30, 40] by ½, half_pixel: (o + ½)·2 − ½ = 0.5, 2.5.
    let w = floats([10, 20, 30, 40], [4])
    expectClose(try resize(w, scales: [0.5], nearest("half_pixel")), [10, 30], shape: [2])
    expectClose(try resize(w, scales: [0.5], nearest("half_pixel", "round_prefer_ceil")), [20, 40], shape: [2])
  }

  @Test func nearestMovesAnyType() throws {
    let bytes = NDArray([UInt8(1), 2, 3, 4], shape: [1, 1, 2, 2])
    let y = try resize(bytes, scales: [1, 1, 2, 1], nearest("asymmetric"))
    #expect(y.shape == [1, 1, 4, 2] && y.scalars(as: UInt8.self) == [1, 2, 1, 2, 3, 4, 3, 4])
    let ints = NDArray([Int64(7), 8], shape: [2])
    #expect(try resize(ints, sizes: [4], nearest("half_pixel")).scalars(as: Int64.self) == [7, 7, 8, 8])
  }

  @Test func linearCoordinateModes() throws {
    // half_pixel ×2: −0.25 (clamped to 0), 0.25, 0.75, 1.25, 1.75, 2.25 (clamped to 2).
    expectClose(try resize(v, scales: [2], linear("half_pixel")), [10, 12.5, 17.5, 22.5, 27.5, 30], shape: [6])
    expectClose(try resize(v, scales: [2], linear("pytorch_half_pixel")), [10, 12.5, 17.5, 22.5, 27.5, 30], shape: [6])
    // asymmetric ×2: 0, 0.5, 1, 1.5, 2, 2.5 (clamped).
    expectClose(try resize(v, scales: [2], linear("asymmetric")), [10, 15, 20, 25, 30, 30], shape: [6])
    // align_corners ×2: 0, 0.4, 0.8, 1.2, 1.6, 2.
    expectClose(try resize(v, scales: [2], linear("align_corners")), [10, 14, 18, 22, 26, 30], shape: [6])
    // To one element: pytorch_half_pixel samples 0, half_pixel 1.
    expectClose(try resize(v, sizes: [1], linear("pytorch_half_pixel")), [10], shape: [1])
    expectClose(try resize(v, sizes: [1], linear("half_pixel")), [20], shape: [1])
    // ×1.5 gives floor(4.5) = 4 elements. half_pixel: (o + ½)/1.5 − ½ = −⅙, ½, 7⁄6, 11⁄6.
    expectClose(try resize(v, scales: [1.5], linear("half_pixel")), [10, 15, 21.666_666, 28.333_334], shape: [4])
    // half_pixel_symmetric moves that by (3/2)·(1 − 4/4.5) = ⅙: 0, ⅔, 4⁄3, 2.
    expectClose(
      try resize(v, scales: [1.5], linear("half_pixel_symmetric")), [10, 16.666_666, 23.333_334, 30], shape: [4])
    // tf_crop_and_resize, roi [0.25, 1.25]: 0.5 + o = 0.5, 1.5, 2.5 (outside).
    expectClose(
      try resize(v, sizes: [3], roi: [0.25, 1.25], linear("tf_crop_and_resize") + [.float("extrapolation_value", -1)]),
      [15, 25, -1], shape: [3])
  }

  @Test func bilinearNCHW() throws {
    // x[r][c] = 1 + 2r + c is linear, so bilinear sampling at (y, x) gives 1 + 2y + x exactly.
    let x = floats([1, 2, 3, 4], [1, 1, 2, 2])
    func expected(_ rows: [Float], _ columns: [Float]) -> [Float] {
      rows.flatMap { r in columns.map { 1 + 2 * r + $0 } }
    }
    // half_pixel ×2 on H and W: −0.25 → 0, 0.25, 0.75, 1.25 → 1.
    let clamped: [Float] = [0, 0.25, 0.75, 1]
    expectClose(
      try resize(x, scales: [1, 1, 2, 2], linear("half_pixel")), expected(clamped, clamped), shape: [1, 1, 4, 4])
    // align_corners to 4×3: rows o/3, columns o/2.
    expectClose(
      try resize(x, sizes: [1, 1, 4, 3], linear("align_corners")), expected([0, 1.0 / 3, 2.0 / 3, 1], [0, 0.5, 1]),
      shape: [1, 1, 4, 3])
    // asymmetric ×2: 0, 0.5, 1, 1.5 → 1.
    expectClose(
      try resize(x, scales: [1, 1, 2, 2], linear("asymmetric")), expected([0, 0.5, 1, 1], [0, 0.5, 1, 1]),
      shape: [1, 1, 4, 4])
    // The same through `axes` (opset 18) and with double elements.
    expectClose(
      try resize(x, scales: [2, 2], linear("half_pixel") + [.ints("axes", [2, -1])]), expected(clamped, clamped),
      shape: [1, 1, 4, 4])
    let doubles = NDArray([Double(1), 2, 3, 4], shape: [1, 1, 2, 2])
    let y = try resize(doubles, scales: [1, 1, 2, 2], linear("half_pixel"))
    #expect(y.dtype == .double && y.scalars(as: Double.self) == expected(clamped, clamped).map { Double($0) })
  }

  @Test func trilinearSeparable() throws {
    // x[a][b][c] = 4a + 2b + c over [2, 2, 2]; asymmetric ×2 samples 0, 0.5, 1, 1 on each axis.
    let x = iota([2, 2, 2])
    let t: [Float] = [0, 0.5, 1, 1]
    let expected = t.flatMap { a in t.flatMap { b in t.map { c in 4 * a + 2 * b + c } } }
    expectClose(try resize(x, scales: [2, 2, 2], linear("asymmetric")), expected, shape: [4, 4, 4])
    // Only the first and last axes of [2, 2, 2], through axes.
    let firstLast = t.flatMap { a in [0, 1].flatMap { b in t.map { c in 4 * a + 2 * Float(b) + c } } }
    expectClose(
      try resize(x, scales: [2, 2], linear("asymmetric") + [.ints("axes", [0, 2])]), firstLast, shape: [4, 2, 4])
  }

  /// The one-pass bilinear loops (per plane, or per output row when there are fewer planes than
  /// threads) agree with two separable passes, on one thread and on three.
  @Test(arguments: [[2, 3, 20, 30], [1, 1, 40, 50]])
  func bilinearMatchesSeparablePasses(shape: [Int]) throws {
    let x = random(shape, seed: 9)
    let attributes = linear("half_pixel")
    let sizes = int64s([33, 47])
    let rows = try runOnThreads(
      "Resize", [x, nil, nil, int64s([33])], attributes: attributes + [.ints("axes", [2])], threads: 1)
    let separable = try runOnThreads(
      "Resize", [rows, nil, nil, int64s([47])], attributes: attributes + [.ints("axes", [3])], threads: 1)
    for threads in [1, 3] {
      let y = try runOnThreads(
        "Resize", [x, nil, nil, sizes], attributes: attributes + [.ints("axes", [2, 3])], threads: threads)
      expectClose(y, separable, tolerance: 1e-6)
    }
  }

  @Test func sizesWithAspectRatioPolicy() throws {
    let x = iota([1, 1, 2, 4])
    func shape(_ policy: String) throws -> [Int] {
      try resize(
        x, sizes: [4, 4],
        nearest("asymmetric") + [.ints("axes", [2, 3]), .string("keep_aspect_ratio_policy", policy)]
      ).shape
    }
    #expect(try shape("stretch") == [1, 1, 4, 4])
    // not_larger: scale min(4/2, 4/4) = 1; not_smaller: max = 2.
    #expect(try shape("not_larger") == [1, 1, 2, 4])
    #expect(try shape("not_smaller") == [1, 1, 4, 8])
  }

  @Test func resize10AndUpsample() throws {
    let x = floats([1, 2, 3, 4], [1, 1, 2, 2])
    let doubled: [Float] = [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]
    let scales = floats([1, 1, 2, 2], [4])
    expectClose(try run("Upsample", [x, scales], opset: 9)[0], doubled, shape: [1, 1, 4, 4])
    expectClose(
      try run("Upsample", [x], attributes: [Attribute("scales", .floats([1, 1, 2, 2]))], opset: 7)[0], doubled,
      shape: [1, 1, 4, 4])
    // Linear, asymmetric: 0, 0.5, 1, 1.5 → 1.
    let up = try run(
      "Upsample", [floats([10, 20], [1, 2]), floats([1, 2], [2])], attributes: [.string("mode", "linear")], opset: 9)
    expectClose(up[0], [10, 15, 20, 20], shape: [1, 4])
    // Resize-10 shrinking rounds up: o/0.5 = 0, 2.
    let big = iota([1, 1, 4, 4])
    expectClose(
      try run("Resize", [big, floats([1, 1, 0.5, 0.5], [4])], opset: 10)[0], [0, 2, 8, 10], shape: [1, 1, 2, 2])
    expectRuntimeError(containing: "must be at least 1") {
      _ = try run("Upsample", [x, floats([1, 1, 0.5, 1], [4])], opset: 9)
    }
  }

  @Test func errors() {
    let x = floats([1, 2, 3, 4], [1, 1, 2, 2])
    expectRuntimeError(containing: "attribute 'mode': unsupported value 'cubic'") {
      _ = try resize(x, scales: [1, 1, 2, 2], [.string("mode", "cubic")])
    }
    expectRuntimeError(containing: "attribute 'antialias': unsupported value 1") {
      _ = try resize(x, scales: [1, 1, 0.5, 0.5], linear("half_pixel") + [.int("antialias", 1)])
    }
    expectRuntimeError(containing: "exactly one of scales and sizes") {
      _ = try resize(x, scales: [1, 1, 2, 2], sizes: [1, 1, 4, 4], nearest("half_pixel"))
    }
    expectRuntimeError(containing: "exactly one of scales and sizes") { _ = try resize(x, nearest("half_pixel")) }
    expectRuntimeError(containing: "one entry per resized axis") {
      _ = try resize(x, scales: [2, 2], nearest("half_pixel"))
    }
    expectRuntimeError(containing: "linear mode supports float and double") {
      _ = try resize(NDArray([Int64(1), 2], shape: [2]), scales: [2], linear("half_pixel"))
    }
    expectRuntimeError(containing: "needs roi") {
      _ = try resize(x, scales: [1, 1, 2, 2], linear("tf_crop_and_resize"))
    }
    expectRuntimeError(containing: "attribute 'coordinate_transformation_mode': unsupported value 'middle'") {
      _ = try resize(x, scales: [1, 1, 2, 2], linear("middle"))
    }
  }
}
