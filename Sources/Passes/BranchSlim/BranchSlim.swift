import Graph

/// DeepRebirth's branch slimming, exact cases: parallel layers reading the same value become one
/// wider layer (METHODS §1.3, §1.6, §1.7.5).
///
///     a = Conv(x, Wa, ba); b = Conv(x, Wb, bb); c = Conv(x, Wc, bc)      (siblings, stacked)
///     →  abc = Conv(x, [Wa; Wb; Wc], [ba; bb; bc]); a, b, c = Split(abc, [Ma, Mb, Mc])
///
///     ra = Relu(a); rb = Relu(b); y = Concat<axis = 1>(ra, rb)            (…and when they are concatenated)
///     →  y = Relu(Conv(x, [Wa; Wb], [ba; bb]))                            (no Split, no Concat)
///
///     q = MatMul(x, Wq) + bq; k = MatMul(x, Wk) + bk; v = MatMul(x, Wv) + bv
///     →  q, k, v = Split<axis = -1>(MatMul(x, [Wq | Wk | Wv]) + [bq | bk | bv])
///
///     y = Conv(x, W3) + Conv(x, W1) + x                                  (RepVGG / ACNet, summed)
///     →  y = Conv(x, W3 + pad(W1) + I, b3 + b1)
///
/// Kernels of different sizes are placed in the largest window: along each spatial axis, with
/// begin pads `p_i`, kernel `k_i`, dilation `d`, stride `s` and input extent `H`,
///
///     P = max_i p_i     t_i = (P − p_i) / d  (must be an integer)     K = max_i (t_i + k_i)
///     E = max(0, (Ho − 1)·s + d·(K − 1) + 1 − H − P)
///
/// and branch i's kernel sits at offset `t_i` of the merged `K` kernel, which has pads `(P, E)`.
/// The merge is exact when the siblings share stride, dilation and group 1 (equal groups when
/// summed), have equal output extents `Ho`, constant float weights, explicit pads (auto_pad
/// NOTSET) and known input spatial extents.
///
/// Cost model: zero-padding a small kernel into a large window adds multiply-adds. Same-geometry
/// siblings (Inception's 1×1 convs on the block input) always merge; a group whose merged MACs
/// exceed the branches' by more than `max-padding-overhead` sheds the sibling whose removal
/// lowers the overhead most until it fits.
///
/// Which runtime it pays on: onnxruntime's NCHWc layout has no Split kernel, so merged siblings
/// plus a Split run slower there; rebirth's runtime and `.tmf` make a Split a view. The pass is
/// therefore on by default for `.tmf` only.
public struct BranchSlim: Pass {
  public static let name = "branch-slim"
  public static let summary = "Merge sibling Convs, MatMuls and Gemms reading the same value into one wider layer"
  public static let isExact = true
  public static let isDefault = false
  public static let preset: Preset? = nil
  public static let targetNote: String? =
    "on for .tmf only: onnxruntime's NCHWc layout has no Split kernel, so merging GoogLeNet's sibling 1x1 convs "
    + "makes it 2.6-2.9% slower; rebirth's runtime and .tmf make a Split a view (enable for .onnx with --enable branch-slim)"
  public static let options: [PassOption] = [
    PassOption(
      "max-padding-overhead", .float, default: "0.10",
      "MACs the merge may add by zero-padding smaller kernels, as a fraction of the branches' MACs"),
    PassOption("min-siblings", .int, default: "2", "the fewest siblings worth merging"),
  ]

  public static func isDefault(for target: OutputTarget) -> Bool { target == .tmf }

  let maxOverhead: Double
  let minSiblings: Int

  public init(options: PassOptions) throws(PassOptionError) {
    maxOverhead = options.float("max-padding-overhead")
    minSiblings = options.int("min-siblings")
    guard maxOverhead >= 0 else { throw PassOptionError("branch-slim.max-padding-overhead must be at least 0") }
    guard minSiblings >= 2 else { throw PassOptionError("branch-slim.min-siblings must be at least 2") }
  }

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    // Summed branches first: merging them is a pure gain, and stacking them would only add a Split.
    rewriter.applyGreedily([SummedConvs(maxOverhead: maxOverhead)])
    rewriter.applyGreedily([
      SiblingConvs(maxOverhead: maxOverhead, minSiblings: minSiblings),
      SiblingLinears(minSiblings: minSiblings),
    ])
  }
}

// MARK: - Convolution branches

/// A Conv with a constant float32 weight reading `x`, its window resolved.
struct ConvBranch {
  let node: Node
  let output: ValueID
  /// The weight tensor, `[M, C/g, k…]`, float32.
  let weightTensor: Tensor
  /// The weight as doubles: converted on use, since matching reads only shapes (converting every
  /// sibling's weight at every match attempt made the pass take seconds on ResNet-50).
  var weight: [Double] { weightTensor.doubles ?? [] }
  let outChannels: Int
  let groupChannels: Int
  let kernel: [Int]
  let bias: [Double]?
  let begin: [Int], end: [Int], strides: [Int], dilations: [Int]
  let group: Int

  /// Reads `node` as a conv branch on its first input; nil on anything unusual.
  init?(_ node: Node, in graph: Graph) {
    guard node.opType == OpType.conv, node.domain.isEmpty || node.domain == "ai.onnx",
      node.outputs.count == 1, let output = node.output(0),
      node.input(0) != nil, let w = graph.constant(node.input(1)), w.dtype == .float, w.shape.count >= 3,
      w.shape.allSatisfy({ $0 > 0 })
    else { return nil }
    let n = w.shape.count - 2
    if let autoPad = node.attribute("auto_pad")?.string, autoPad != "NOTSET" { return nil }
    let kernel = Array(w.shape.dropFirst(2))
    if let shape = node.attribute("kernel_shape")?.ints, shape.map(Int.init) != kernel { return nil }
    let pads = node.attribute("pads")?.ints.map { $0.map(Int.init) } ?? Array(repeating: 0, count: 2 * n)
    let strides = node.attribute("strides")?.ints.map { $0.map(Int.init) } ?? Array(repeating: 1, count: n)
    let dilations = node.attribute("dilations")?.ints.map { $0.map(Int.init) } ?? Array(repeating: 1, count: n)
    guard pads.count == 2 * n, pads.allSatisfy({ $0 >= 0 }), strides.count == n, strides.allSatisfy({ $0 >= 1 }),
      dilations.count == n, dilations.allSatisfy({ $0 >= 1 })
    else { return nil }
    let group = Int(node.attribute("group")?.int ?? 1)
    guard group >= 1, w.shape[0] % group == 0 else { return nil }
    var bias: [Double]?
    if node.inputs.count > 2, let b = node.input(2) {
      guard let t = graph.constant(b), t.dtype == .float, t.elementCount == w.shape[0], let v = t.doubles else { return nil }
      bias = v
    }
    self.node = node
    self.output = output
    self.weightTensor = w
    self.outChannels = w.shape[0]
    self.groupChannels = w.shape[1]
    self.kernel = kernel
    self.bias = bias
    self.begin = Array(pads.prefix(n))
    self.end = Array(pads.suffix(n))
    self.strides = strides
    self.dilations = dilations
    self.group = group
  }

  var input: ValueID { node.input(0)! }
  var window: BranchWindow { BranchWindow(kernel: kernel, begin: begin, end: end) }

  /// Whether `other` slides over the input the same way (stride, dilation, rank, group).
  func slidesLike(_ other: ConvBranch) -> Bool {
    strides == other.strides && dilations == other.dilations && kernel.count == other.kernel.count
      && group == other.group && groupChannels == other.groupChannels
  }

  /// Output extents over an input of spatial extents `spatial`.
  func outputExtents(_ spatial: [Int]) -> [Int]? { window.outputExtents(spatial, strides: strides, dilations: dilations) }

  /// Multiply-adds per batch item.
  func macs(outputExtents: [Int]) -> Double {
    Double(outChannels * groupChannels) * Double(kernel.reduce(1, *)) * Double(outputExtents.reduce(1, *))
  }
}

/// One branch's window: kernel and pads along each spatial axis.
struct BranchWindow: Equatable {
  let kernel: [Int], begin: [Int], end: [Int]

  /// The identity as a 1×…×1 window with no pads.
  static func identity(rank: Int) -> BranchWindow {
    BranchWindow(kernel: Array(repeating: 1, count: rank), begin: Array(repeating: 0, count: rank), end: Array(repeating: 0, count: rank))
  }

  func outputExtents(_ spatial: [Int], strides: [Int], dilations: [Int]) -> [Int]? {
    guard spatial.count == kernel.count else { return nil }
    var extents: [Int] = []
    for a in 0..<kernel.count {
      let span = spatial[a] + begin[a] + end[a] - (dilations[a] * (kernel[a] - 1) + 1)
      guard span >= 0 else { return nil }
      extents.append(span / strides[a] + 1)
    }
    return extents
  }
}

/// The window of the merged conv and where each branch's kernel sits in it (METHODS §1.7.5).
struct MergedWindow {
  let kernel: [Int], begin: [Int], end: [Int]
  /// Per branch, the offset of its kernel inside ``kernel``, per axis.
  let offsets: [[Int]]

  /// Aligns `windows` (equal output extents `outputs` over input extents `spatial`); nil when a
  /// branch's begin pad is not a multiple of the dilation away from the largest.
  init?(_ windows: [BranchWindow], spatial: [Int], outputs: [Int], strides: [Int], dilations: [Int]) {
    guard let first = windows.first else { return nil }
    let n = first.kernel.count
    var kernel: [Int] = [], begin: [Int] = [], end: [Int] = []
    var offsets = Array(repeating: [Int](), count: windows.count)
    for a in 0..<n {
      let d = dilations[a], p = windows.map { $0.begin[a] }.max()!
      var k = 0
      for (i, w) in windows.enumerated() {
        guard (p - w.begin[a]) % d == 0 else { return nil }
        offsets[i].append((p - w.begin[a]) / d)
        k = max(k, offsets[i][a] + w.kernel[a])
      }
      kernel.append(k)
      begin.append(p)
      end.append(max(0, (outputs[a] - 1) * strides[a] + d * (k - 1) + 1 - spatial[a] - p))
    }
    self.kernel = kernel
    self.begin = begin
    self.end = end
    self.offsets = offsets
    let merged = BranchWindow(kernel: kernel, begin: begin, end: end)
    guard merged.outputExtents(spatial, strides: strides, dilations: dilations) == outputs else { return nil }
  }

  var pads: [Int64] { (begin + end).map(Int64.init) }

  /// Writes `kernel` (`[m, c, k…]` flattened, window `branchKernel`) at `offset` into `into`
  /// (`[M, c, K…]`), starting at output channel `firstChannel`, adding to what is there.
  func place(
    _ weight: [Double], kernel branchKernel: [Int], offset: [Int], channels: Int, groupChannels: Int,
    firstChannel: Int, into merged: inout [Double]
  ) {
    let small = branchKernel.reduce(1, *), big = kernel.reduce(1, *)
    for m in 0..<channels {
      for c in 0..<groupChannels {
        for index in 0..<small {
          // Spatial coordinates of `index` in the small kernel, shifted into the big one.
          var rest = index, bigIndex = 0, step = 1
          var coordinates = Array(repeating: 0, count: kernel.count)
          for a in stride(from: kernel.count - 1, through: 0, by: -1) {
            coordinates[a] = rest % branchKernel[a] + offset[a]
            rest /= branchKernel[a]
          }
          for a in stride(from: kernel.count - 1, through: 0, by: -1) {
            bigIndex += coordinates[a] * step
            step *= kernel[a]
          }
          let source = (m * groupChannels + c) * small + index
          let target = ((firstChannel + m) * groupChannels + c) * big + bigIndex
          merged[target] += weight[source]
        }
      }
    }
  }
}

/// The shape-known facts about a conv input the merges need.
struct BranchInput {
  let value: ValueID
  /// Its shape `[N, C, spatial…]`, with a static channel count and spatial extents.
  let batch: Dim
  let channels: Int
  let spatial: [Int]

  init?(_ value: ValueID, in graph: Graph) {
    guard let shape = graph.shape(of: value), shape.count >= 3, let c = shape[1].value else { return nil }
    var spatial: [Int] = []
    for d in shape.dropFirst(2) {
      guard let v = d.value, v > 0 else { return nil }
      spatial.append(v)
    }
    self.value = value
    self.batch = shape[0]
    self.channels = c
    self.spatial = spatial
  }
}

// MARK: - Shared rewriting helpers

extension Rewriter {
  /// Adds a Split of `value` along `axis` into parts of `sizes`, in the form the model's opset
  /// wants (sizes as an int64 input from opset 13, as an attribute before), with outputs named
  /// after `names`. Returns its outputs.
  mutating func addBranchSplit(of value: ValueID, axis: Int, sizes: [Int], name: String, outputNames: [String]) throws -> [ValueID] {
    let sizes64 = sizes.map(Int64.init)
    let node: NodeID
    if opset >= 13 {
      let splitSizes = addInitializer("\(name)_sizes", Tensor(int64s: sizes64, shape: [sizes.count]))
      node = try addNode(
        OpType.split, name: name, inputs: [value, splitSizes], outputs: outputNames,
        attributes: [Attribute("axis", .int(Int64(axis)))])
    } else {
      node = try addNode(
        OpType.split, name: name, inputs: [value], outputs: outputNames,
        attributes: [Attribute("axis", .int(Int64(axis))), Attribute("split", .ints(sizes64))])
    }
    return graph[node].outputs.compactMap { $0 }
  }
}

extension String {
  /// `x` with one decimal.
  fileprivate init(format1 x: Double) {
    let tenths = Int((x * 10).rounded())
    self = "\(tenths / 10).\(tenths % 10)"
  }
}

extension BranchSlim {
  /// The name a merged node takes: its parts' names joined ("b1_b2_b3"), or outputs' for unnamed nodes.
  static func mergedName(_ nodes: [Node], in graph: Graph) -> String {
    nodes.map { n in n.name.isEmpty ? (n.output(0).map { graph[$0].name } ?? "node") : n.name }.joined(separator: "_")
  }

  /// Multiply-adds in a short human form: 1.2M, 340K, 512.
  static func macsText(_ macs: Double) -> String {
    if macs >= 1e9 { return String(format1: macs / 1e9) + "G" }
    if macs >= 1e6 { return String(format1: macs / 1e6) + "M" }
    if macs >= 1e3 { return String(format1: macs / 1e3) + "K" }
    return String(Int(macs))
  }

  /// A float32 tensor from doubles.
  static func float32Tensor(_ values: [Double], shape: [Int]) -> Tensor {
    Tensor(floats: values.map { Float($0) }, shape: shape)
  }
}
