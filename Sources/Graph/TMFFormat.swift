/// The layout of `.tmf`, rebirth's compact runtime format (specified in docs/tmf.md), shared by the
/// writer (Exporters) and the validating reader (Runtime). Every number here is part of the file
/// format: change one only with a new major version; add new ones with a new minor version.
///
///     [header 64 B][section table: count × 32 B][sections, 8-byte aligned][data section, 64-byte aligned]
public enum TMF {
  /// `\x89 T M F \r \n \x1a \n`: PNG's trick, so text-mode transfers and truncation show at once.
  public static let magic: [UInt8] = [0x89, 0x54, 0x4D, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
  public static let versionMajor: UInt16 = 1
  public static let versionMinor: UInt16 = 2
  public static let headerSize = 64
  public static let sectionEntrySize = 32
  /// Alignment of the data section and of every tensor's data in it.
  public static let dataAlignment = 64
  /// Alignment of every other section.
  public static let sectionAlignment = 8
  /// The index that marks an omitted optional input or output, and an unknown rank.
  public static let absent: UInt32 = 0xFFFF_FFFF
  /// Header flags a reader must understand (bits 0–15); none are defined in 1.0.
  public static let requiredFlagsMask: UInt32 = 0x0000_FFFF
  /// Section flag: a reader that does not know the section's kind must refuse the file.
  public static let sectionRequired: UInt32 = 1

  /// Byte offsets of the header's fields.
  public enum Header {
    public static let magic = 0, versionMajor = 8, versionMinor = 10, flags = 12, headerSize = 16
    public static let sectionCount = 20, sectionTableOffset = 24, fileSize = 32
    public static let sectionTableCRC = 40, headerCRC = 44
  }

  /// Byte offsets of a section table entry's fields.
  public enum SectionEntry {
    public static let kind = 0, flags = 4, offset = 8, length = 16, crc = 24
  }

  public enum SectionKind: UInt32, Sendable, CaseIterable {
    case strings = 1, tensors = 2, nodes = 3, attributes = 4, graph = 5
    case u32Pool = 6, i64Pool = 7, f32Pool = 8, metadata = 9, data = 10
    /// (1.2) The subgraphs (If branches): graph records 1, 2, … after the main graph's (kind 5).
    case subgraphs = 11

    public var name: String {
      switch self {
      case .strings: "strings"
      case .tensors: "tensors"
      case .nodes: "nodes"
      case .attributes: "attributes"
      case .graph: "graph"
      case .u32Pool: "u32 pool"
      case .i64Pool: "i64 pool"
      case .f32Pool: "f32 pool"
      case .metadata: "metadata"
      case .data: "data"
      case .subgraphs: "subgraphs"
      }
    }
  }

  /// Tables (tensors, nodes, attributes) start with `u32 count, u32 record size`; a record may be
  /// longer than this version's (a newer minor version appends fields), never shorter.
  public static let tableHeaderSize = 8

  /// A tensor record: byte offsets and size.
  public enum TensorRecord {
    public static let size = 64
    public static let name = 0, kind = 4, dtype = 8, encoding = 12, rank = 16, dimsStart = 20
    public static let dataOffset = 24, dataLength = 32, quantAxis = 40, quantCount = 44
    public static let scaleStart = 48, zeroPointStart = 52, flags = 56
    /// (1.2; reserved and 0 before) The graph the tensor belongs to: 0 the main graph, `i + 1`
    /// subgraph record `i`.
    public static let graph = 60
  }

  /// A node record: byte offsets and size.
  public enum NodeRecord {
    public static let size = 48
    public static let name = 0, opCode = 4, activation = 8, activationParamsStart = 12, activationParamsCount = 16
    public static let inputsStart = 20, inputCount = 24, outputsStart = 28, outputCount = 32
    public static let attributesStart = 36, attributeCount = 40, flags = 44
  }

  /// An attribute record: byte offsets and size.
  public enum AttributeRecord {
    public static let size = 24
    public static let name = 0, type = 4, value = 8, count = 16
  }

  /// The graph section's fixed part; then inputs (u32 ×), outputs (u32 ×), opsets (16 B each).
  public enum GraphRecord {
    public static let size = 24
    public static let name = 0, inputCount = 4, outputCount = 8, opsetCount = 12, irVersion = 16
    public static let opsetSize = 16
  }

  /// (1.2) A subgraph record (section `subgraphs`): byte offsets and size. Subgraph record `i` is
  /// graph `i + 1`; graph 0 is the main graph (section `graph`).
  public enum SubgraphRecord {
    public static let size = 48
    public static let name = 0, parent = 4, nodesStart = 8, nodeCount = 12, inputsStart = 16, inputCount = 20
    public static let outputsStart = 24, outputCount = 28, outerStart = 32, outerCount = 36, flags = 40
  }

  /// How deep subgraphs may nest: the main graph is at depth 0, an If branch of it at depth 1.
  /// Bounds the reader's recursion; real models use at most 4 (silero-vad).
  public static let maxGraphDepth = 16

  /// What a tensor record describes.
  public enum TensorKind: UInt32, Sendable {
    /// A node output: no data.
    case activation = 0
    /// A constant initializer: data.
    case constant = 1
    /// A graph input; with data, the data is its default (an initializer the caller may override).
    case input = 2
    /// The value of a tensor attribute (Constant's `value`): data, not a value of the graph.
    case attribute = 3
  }

  /// How a tensor's elements are stored in the data section.
  public enum Encoding: UInt32, Sendable {
    /// Little-endian elements of the tensor's dtype, packed: what the runtime uses in place.
    case raw = 0
    /// (1.1) A float32 tensor stored as IEEE binary16 elements.
    case fp16 = 1
    /// (1.1) A float32 tensor stored as int8 `q`, `x = scale[c] · (q − zero_point[c])`, one scale per
    /// index `c` of the quant axis.
    case int8 = 2
    /// (1.1) A float32 tensor stored as a codebook of quant-count float centroids and packed indices
    /// (4 bits each for at most 16 centroids, else 8).
    case codebook = 3
    /// Reserved (1.x): sparse, compressed rows with relative indices.
    case csr = 4

    public var name: String {
      switch self {
      case .raw: "raw"
      case .fp16: "fp16"
      case .int8: "int8"
      case .codebook: "codebook"
      case .csr: "csr"
      }
    }

    /// Whether this version reads the encoding.
    public var isSupported: Bool { self != .csr }
  }

  /// The largest codebook (8-bit indices).
  public static let maxCodebookSize = 256

  /// Bits per index of a codebook of `size` centroids: 4 up to 16 centroids, else 8.
  public static func codebookIndexBits(_ size: Int) -> Int { size <= 16 ? 4 : 8 }

  /// Bytes of `elements` float32 values stored with `encoding` (a codebook of `quantCount`
  /// centroids); nil on overflow or for raw and csr, whose size depends on the dtype or the data.
  public static func encodedByteCount(_ encoding: Encoding, elements: Int, quantCount: Int) -> Int? {
    switch encoding {
    case .fp16:
      let (bytes, overflow) = elements.multipliedReportingOverflow(by: 2)
      return overflow ? nil : bytes
    case .int8: return elements
    case .codebook: return codebookIndexBits(quantCount) == 4 ? elements / 2 + elements % 2 : elements
    case .raw, .csr: return nil
    }
  }

  /// Attribute value types: ONNX's `AttributeProto.AttributeType` codes.
  public enum AttributeType: UInt32, Sendable {
    case float = 1, int = 2, string = 3, tensor = 4, graph = 5, floats = 6, ints = 7, strings = 8
    case tensors = 9, graphs = 10
  }

  /// The fused activation codes of a node record; `none` for an unfused node.
  public static let activationCodes: [String] = [
    "",  // 0: none
    OpType.relu, OpType.clip, OpType.leakyRelu, OpType.sigmoid, OpType.hardSigmoid, OpType.hardSwish, OpType.tanh,
  ]

  /// The element types a `.tmf` tensor may have (ONNX `TensorProto.DataType` codes).
  public static let supportedDTypes: Set<DType> = [.float, .float16, .double, .int64, .int32, .int8, .uint8, .bool]

  /// The operator codes: code `i + 1` is `opCodes[i]`, a default-domain ONNX operator. A stable,
  /// append-only list; 0 is invalid. Codes from 1000 on are reserved for rebirth's own layers.
  public static let opCodes: [String] = [
    "Abs", "Add", "And", "ArgMax", "ArgMin", "AveragePool", "BatchNormalization", "Cast", "CastLike", "Clip",  // 1–10
    "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose", "DepthToSpace", "Div", "Dropout", "Equal", "Erf",  // 11–20
    "Exp", "Expand", "Flatten", "Gather", "GatherElements", "Gelu", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Greater",  // 21–30
    "GreaterOrEqual", "GRU", "HardSigmoid", "HardSwish", "Identity", "If", "InstanceNormalization", "LayerNormalization",
    "LeakyRelu", "Less",  // 31–40
    "LessOrEqual", "Log", "LogSoftmax", "LRN", "LSTM", "MatMul", "Max", "MaxPool", "Mean", "Min",  // 41–50
    "Mul", "Neg", "Not", "Or", "Pad", "Pow", "PRelu", "Range", "ReduceL1", "ReduceL2",  // 51–60
    "ReduceLogSum", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu",
    "Reshape", "Resize",  // 61–70
    "RNN", "Shape", "Sigmoid", "Size", "Slice", "Softmax", "SpaceToDepth", "Sqrt", "Split", "Squeeze",  // 71–80
    "Sub", "Sum", "Tanh", "Tile", "Transpose", "Unsqueeze", "Upsample", "Where", "Xor",  // 81–89
  ]

  /// The code of a default-domain operator, if it has one.
  public static func opCode(of opType: String) -> UInt32? {
    opCodeTable[opType]
  }

  /// The operator of a code, if the code is defined.
  public static func opType(of code: UInt32) -> String? {
    guard code >= 1, Int(code) <= opCodes.count else { return nil }
    return opCodes[Int(code) - 1]
  }

  private static let opCodeTable: [String: UInt32] = {
    var table: [String: UInt32] = [:]
    for (i, op) in opCodes.enumerated() { table[op] = UInt32(i + 1) }
    return table
  }()

  /// Dims of the i64 pool: `≥ 0` an extent, `-1` unknown, `≤ -2` the symbolic name with string index `-2 - v`.
  public static let unknownDim: Int64 = -1

  /// Rounds `offset` up to a multiple of `alignment` (a power of two); nil on overflow.
  public static func aligned(_ offset: Int, to alignment: Int) -> Int? {
    let (sum, overflow) = offset.addingReportingOverflow(alignment - 1)
    return overflow ? nil : sum & ~(alignment - 1)
  }
}
