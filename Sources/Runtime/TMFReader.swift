import Graph

/// How to open a `.tmf` file.
public struct TMFReadOptions: Sendable {
  /// Check the data section's CRC-32 too (the metadata sections' are always checked). Reading every
  /// weight byte costs time proportional to the model's size; a caller that trusts its storage may
  /// skip it.
  public var verifyDataChecksum = true
  public init(verifyDataChecksum: Bool = true) { self.verifyDataChecksum = verifyDataChecksum }
}

/// An opened, validated `.tmf` file.
public struct TMFFile: Sendable {
  /// The graph, its constants adopting the mapped bytes (no copy).
  public let model: Model
  /// The metadata section's entries (producer, source digest, passes, …), in file order.
  public let metadata: [MetadataEntry]
  public let versionMajor: UInt16
  public let versionMinor: UInt16
  /// Sections of a kind this reader does not know, skipped.
  public let skippedSections: [UInt32]
  private let mapping: TMFMapping

  init(model: Model, metadata: [MetadataEntry], version: (UInt16, UInt16), skipped: [UInt32], mapping: TMFMapping) {
    self.model = model
    self.metadata = metadata
    (versionMajor, versionMinor) = version
    skippedSections = skipped
    self.mapping = mapping
  }

  /// The file's bytes as mapped (to check that tensors point into them).
  public var mappedBytes: UnsafeRawBufferPointer { mapping.bytes }
}

/// Reads `.tmf` files (docs/tmf.md): maps the file, validates every header field, offset, length,
/// index, shape and checksum before use, and builds the graph with float32 (and every other raw)
/// weights used in place from the mapping. A damaged or hostile file is one `TMFError` naming the
/// section and field; no input makes it trap or read outside the file.
public enum TMFReader {
  public static func open(path: String, options: TMFReadOptions = TMFReadOptions()) throws(TMFError) -> TMFFile {
    do {
      return try decode(TMFMapping(path: path), options: options)
    } catch let problem {
      throw TMFError(path: path, message: problem.message)
    }
  }

  /// Reads a file held in memory (tests); `path` only names it in errors.
  public static func open(bytes: [UInt8], path: String = "<memory>", options: TMFReadOptions = TMFReadOptions()) throws(TMFError) -> TMFFile {
    guard bytes.count >= TMF.headerSize else {
      throw TMFError(path: path, message: "header: the file is \(bytes.count) bytes, shorter than the \(TMF.headerSize)-byte header (truncated?)")
    }
    do {
      return try decode(TMFMapping(copying: bytes), options: options)
    } catch let problem {
      throw TMFError(path: path, message: problem.message)
    }
  }

  /// The model of a `.tmf` file.
  public static func load(path: String, options: TMFReadOptions = TMFReadOptions()) throws(TMFError) -> Model {
    try open(path: path, options: options).model
  }

  private static func decode(_ mapping: TMFMapping, options: TMFReadOptions) throws(TMFProblem) -> TMFFile {
    let file = TMFRegion(bytes: mapping.bytes, fileOffset: 0, name: "header")
    let (version, sections, skipped) = try readHeader(file, options: options)
    var decoder = try TMFDecoder(sections: sections, mapping: mapping)
    let model = try decoder.model()
    return TMFFile(model: model, metadata: decoder.metadata, version: version, skipped: skipped, mapping: mapping)
  }

  /// Checks the header and section table; returns the known sections by kind.
  static func readHeader(_ file: TMFRegion, options: TMFReadOptions) throws(TMFProblem)
    -> ((UInt16, UInt16), [TMF.SectionKind: TMFRegion], [UInt32])
  {
    guard file.count >= TMF.headerSize else {
      throw TMFProblem("header: the file is \(file.count) bytes, shorter than the \(TMF.headerSize)-byte header (truncated?)")
    }
    guard Array(file.bytes[0..<TMF.magic.count]) == TMF.magic else { throw TMFProblem("header: magic: not a .tmf file") }
    let major = try file.load(TMF.Header.versionMajor, as: UInt16.self, "version_major")
    let minor = try file.load(TMF.Header.versionMinor, as: UInt16.self, "version_minor")
    guard major == TMF.versionMajor else {
      throw TMFProblem("header: version_major: the file is .tmf \(major).\(minor); this reader reads \(TMF.versionMajor).x"
        + (major > TMF.versionMajor ? " (a newer major version: update rebirth)" : ""))
    }
    let headerCRC = try file.u32(TMF.Header.headerCRC, "header_crc")
    let computed = try file.slice(0, TMF.Header.headerCRC, "header").crc32()
    guard headerCRC == computed else { throw TMFProblem("header: header_crc: checksum mismatch (the header is damaged)") }
    let flags = try file.u32(TMF.Header.flags, "flags")
    guard flags & TMF.requiredFlagsMask == 0 else {
      throw TMFProblem("header: flags: required flag bits 0x\(String(flags & TMF.requiredFlagsMask, radix: 16)) are unknown to this reader")
    }
    let fileSize = try tmfInt(try file.u64(TMF.Header.fileSize, "file_size"), "header: file_size")
    guard fileSize == file.count else {
      throw TMFProblem("header: file_size: the header says \(fileSize) bytes but the file has \(file.count)"
        + (file.count < fileSize ? " (truncated)" : ""))
    }
    let headerSize = Int(try file.u32(TMF.Header.headerSize, "header_size"))
    guard headerSize >= TMF.headerSize, headerSize <= file.count else {
      throw TMFProblem("header: header_size: \(headerSize) is not between \(TMF.headerSize) and the file size")
    }
    let count = Int(try file.u32(TMF.Header.sectionCount, "section_count"))
    let tableOffset = try tmfInt(try file.u64(TMF.Header.sectionTableOffset, "section_table_offset"), "header: section_table_offset")
    guard tableOffset >= headerSize else { throw TMFProblem("header: section_table_offset: \(tableOffset) overlaps the header") }
    let tableLength = try tmfMultiply(count, TMF.sectionEntrySize, "header: section_count")
    let table: TMFRegion
    do { table = try file.slice(tableOffset, tableLength, "section table") } catch {
      throw TMFProblem("header: section_table_offset: the section table (\(count) entries at byte \(tableOffset)) lies past the end of the file (truncated?)")
    }
    guard try file.u32(TMF.Header.sectionTableCRC, "section_table_crc") == table.crc32() else {
      throw TMFProblem("section table: checksum mismatch (the table is damaged)")
    }
    let tableEnd = tableOffset + tableLength
    var sections: [TMF.SectionKind: TMFRegion] = [:]
    var skipped: [UInt32] = []
    var ranges: [(Range<Int>, String)] = []
    for i in 0..<count {
      let entry = TMFRegion(bytes: table.bytes, fileOffset: table.fileOffset, name: "section table entry \(i)")
      let base = i * TMF.sectionEntrySize
      let kindCode = try entry.u32(base + TMF.SectionEntry.kind, "kind")
      let sectionFlags = try entry.u32(base + TMF.SectionEntry.flags, "flags")
      let kind = TMF.SectionKind(rawValue: kindCode)
      let name = kind.map { "section '\($0.name)'" } ?? "section of kind \(kindCode)"
      let offset = try tmfInt(try entry.u64(base + TMF.SectionEntry.offset, "offset"), "\(name): offset")
      let length = try tmfInt(try entry.u64(base + TMF.SectionEntry.length, "length"), "\(name): length")
      let end = try tmfAdd(offset, length, "\(name)")
      guard offset >= tableEnd else { throw TMFProblem("\(name): offset: \(offset) overlaps the header or section table") }
      guard end <= file.count else {
        throw TMFProblem("\(name): offset + length: bytes \(offset)..<\(end) lie past the end of the file (\(file.count) bytes; truncated?)")
      }
      guard let kind else {
        if sectionFlags & TMF.sectionRequired != 0 {
          throw TMFProblem("\(name): the section is marked required but this reader does not know its kind (a newer minor version?)")
        }
        skipped.append(kindCode)
        continue
      }
      let alignment = kind == .data ? TMF.dataAlignment : TMF.sectionAlignment
      guard offset % alignment == 0 else { throw TMFProblem("\(name): offset: \(offset) is not a multiple of \(alignment)") }
      guard sections[kind] == nil else { throw TMFProblem("\(name): the section appears twice") }
      let region = TMFRegion(bytes: UnsafeRawBufferPointer(rebasing: file.bytes[offset..<end]), fileOffset: offset, name: name)
      if kind != .data || options.verifyDataChecksum {
        let crc = try entry.u32(base + TMF.SectionEntry.crc, "crc")
        guard crc == region.crc32() else { throw TMFProblem("\(name): crc: checksum mismatch (the section is damaged)") }
      }
      sections[kind] = region
      ranges.append((offset..<end, name))
    }
    ranges.sort { $0.0.lowerBound < $1.0.lowerBound }
    for (a, b) in zip(ranges, ranges.dropFirst()) where a.0.overlaps(b.0) {
      throw TMFProblem("\(b.1): offset: overlaps \(a.1)")
    }
    for required in [TMF.SectionKind.strings, .tensors, .nodes, .graph] where sections[required] == nil {
      throw TMFProblem("section table: the required section '\(required.name)' is missing")
    }
    return ((major, minor), sections, skipped)
  }
}
