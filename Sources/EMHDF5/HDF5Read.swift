import EMCore
import Foundation
import CHDF5

// Reading helpers for HDF5-based input formats (EMD): listing groups, attributes of any simple
// type as metadata values, compound members, complex values stored as {real, imag} compounds.
// Callers that may run concurrently with the writer hold `HDF5.lock`.

extension HDF5Group {
    /// Names of the child groups, in creation (or name) order.
    public var groupNames: [String] { childNames.filter { objectType($0) == H5O_TYPE_GROUP } }

    /// Names of the child datasets, in creation (or name) order.
    public var datasetNames: [String] { childNames.filter { objectType($0) == H5O_TYPE_DATASET } }
}

extension HDF5Node {
    /// Every attribute as an ordered metadata object (unsupported types are skipped).
    public var attributesMeta: MetaValue {
        .object(attributeNames.compactMap { n in attributeMeta(n).map { (n, $0) } })
    }

    /// An attribute of string, integer, float or boolean-enum type: a scalar value for scalar
    /// or one-element attributes, an array otherwise. Nil for other types or missing names.
    public func attributeMeta(_ name: String) -> MetaValue? {
        guard H5Aexists(id, name) > 0 else { return nil }
        let a = H5ID(H5Aopen(id, name, hid_t(H5P_DEFAULT)), .attribute)
        guard a.id >= 0 else { return nil }
        let ft = H5ID(H5Aget_type(a.id), .datatype)
        let sp = H5ID(H5Aget_space(a.id), .dataspace)
        let n = Int(H5Sget_simple_extent_npoints(sp.id))
        guard n >= 0, n <= 1 << 20, checkAttributeRead(name, elements: n, elementSize: max(8, H5Tget_size(ft.id))) else { return nil }
        let cls = H5Tget_class(ft.id)
        var values: [MetaValue]
        switch cls {
        case H5T_STRING:
            guard let s = attributeStrings(name) else { return nil }
            values = s.map { .string($0) }
        case H5T_INTEGER:
            let signed = H5Tget_sign(ft.id) == H5T_SGN_2
            if signed {
                var out = [Int64](repeating: 0, count: max(n, 1))
                guard H5Aread(a.id, emc_T_NATIVE_INT64(), &out) >= 0 else { return nil }
                values = out.prefix(max(n, 1)).map { .int($0) }
            } else {
                var out = [UInt64](repeating: 0, count: max(n, 1))
                guard H5Aread(a.id, emc_T_NATIVE_UINT64(), &out) >= 0 else { return nil }
                values = out.prefix(max(n, 1)).map { .uint($0) }
            }
        case H5T_FLOAT:
            guard let d = numericAttribute(name) else { return nil }
            values = d.map { .double($0) }
        case H5T_ENUM:
            guard H5Tget_size(ft.id) == 1 else { return nil }
            var out = [Int8](repeating: 0, count: max(n, 1))
            guard H5Aread(a.id, ft.id, &out) >= 0 else { return nil }
            values = out.map { .bool($0 != 0) }
        default:
            return nil
        }
        if values.count == 1 { return values[0] }
        return .array(values)
    }
}

extension HDF5Dataset {
    /// Members of a compound element type: name, class, size and byte offset; nil when the
    /// type is not compound.
    public var compoundMembers: [(name: String, cls: H5T_class_t, size: Int, offset: Int)]? {
        let t = H5ID(H5Dget_type(id), .datatype)
        guard H5Tget_class(t.id) == H5T_COMPOUND else { return nil }
        let n = H5Tget_nmembers(t.id)
        guard n >= 0 else { return nil }
        var out: [(String, H5T_class_t, Int, Int)] = []
        for i in 0..<UInt32(n) {
            guard let cname = H5Tget_member_name(t.id, i) else { return nil }
            let name = String(cString: cname)
            H5free_memory(cname)
            let mt = H5ID(H5Tget_member_type(t.id, i), .datatype)
            out.append((name, H5Tget_member_class(t.id, i), H5Tget_size(mt.id), H5Tget_member_offset(t.id, i)))
        }
        return out
    }

    /// Reads a hyperslab of a compound {real, imag} dataset of floats as interleaved complex
    /// values (`componentSize` 4 → complex64, 8 → complex128) in native order.
    public func readComplex(start: [Int], count: [Int], realName: String, imagName: String, componentSize: Int,
                            into buffer: UnsafeMutableRawBufferPointer) throws {
        let mt = H5ID(H5Tcreate(H5T_COMPOUND, 2 * componentSize), .datatype)
        let f = componentSize == 4 ? emc_T_NATIVE_FLOAT() : emc_T_NATIVE_DOUBLE()
        H5Tinsert(mt.id, realName, 0, f)
        H5Tinsert(mt.id, imagName, componentSize, f)
        try checkRead(elements: count.reduce(1, *), elementSize: 2 * componentSize, whole: false)
        defer { HDF5Guard.endRead() }
        let need = count.reduce(1, *) * 2 * componentSize
        guard buffer.count >= need else {
            throw EMError(.badInput, file: filePath, at: path, "buffer too small for the selection")
        }
        try readPieces(start: start, count: count, elementSize: 2 * componentSize, into: buffer) { fs, ms, base in
            if H5Dread(id, mt.id, ms.id, fs.id, hid_t(H5P_DEFAULT), base) < 0 {
                throw EMError(.badInput, file: filePath, at: path, "HDF5 could not read the complex values")
            }
        }
    }

    /// Number of elements (product of the shape; 1 for scalars).
    public var elementCount: Int { shape.reduce(1, *) }

    /// A small dataset as a metadata value: numbers, strings, booleans; scalar or 1-element
    /// datasets give a single value, larger ones an array (nil beyond `maxElements`).
    public func readMeta(maxElements: Int = 4096) -> MetaValue? {
        let n = elementCount
        guard n <= maxElements, (try? checkRead(elements: n, elementSize: max(8, typeInfo.size), whole: true)) != nil else { return nil }
        defer { HDF5Guard.endRead() }
        let info = typeInfo
        var values: [MetaValue]
        switch info.cls {
        case H5T_STRING:
            guard let s = readStringValues() else { return nil }
            values = s.map { .string($0) }
        case H5T_INTEGER:
            if info.signed {
                var out = [Int64](repeating: 0, count: max(n, 1))
                let mt = H5ID(H5Tcopy(emc_T_NATIVE_INT64()), .datatype)
                guard H5Dread(id, mt.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &out) >= 0 else { return nil }
                values = out.map { .int($0) }
            } else {
                var out = [UInt64](repeating: 0, count: max(n, 1))
                let mt = H5ID(H5Tcopy(emc_T_NATIVE_UINT64()), .datatype)
                guard H5Dread(id, mt.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &out) >= 0 else { return nil }
                values = out.map { .uint($0) }
            }
        case H5T_FLOAT:
            guard let d = try? readAllDoubles() else { return nil }
            values = d.map { .double($0) }
        case H5T_ENUM:
            guard info.size == 1 else { return nil }
            var out = [Int8](repeating: 0, count: max(n, 1))
            let t = H5ID(H5Dget_type(id), .datatype)
            guard H5Dread(id, t.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &out) >= 0 else { return nil }
            values = out.map { .bool($0 != 0) }
        default:
            return nil
        }
        if values.count == 1 && shape.count <= 1 { return values[0] }
        return .array(values)
    }

    /// Reads a 1-D run of `count` elements starting at `start` from a dataset of shape (N) or
    /// (N, 1) (Velox streams) as `type`.
    public func readRun(start: Int, count: Int, as type: ElementType, into buffer: UnsafeMutableRawBufferPointer) throws {
        let rank = shape.count
        if rank == 1 {
            try read(start: [start], count: [count], as: type, into: buffer)
        } else {
            try read(start: [start] + Array(repeating: 0, count: rank - 1),
                     count: [count] + Array(repeating: 1, count: rank - 1), as: type, into: buffer)
        }
    }
}

/// Variable-length string memory type with the character set of `fileType` (HDF5 does not
/// convert between ASCII and UTF-8).
private func vlenStringType(matching fileType: hid_t) -> H5ID {
    let t = H5Tcopy(emc_T_C_S1())
    H5Tset_size(t, emc_T_VARIABLE())
    H5Tset_cset(t, H5Tget_cset(fileType))
    return H5ID(t, .datatype)
}

extension HDF5Dataset {
    /// All values as doubles (integer or float datasets of any shape).
    public func readAllDoubles() throws -> [Double] {
        let n = elementCount
        try checkRead(elements: n, elementSize: 8, whole: true)
        defer { HDF5Guard.endRead() }
        var out = [Double](repeating: 0, count: max(n, 1))
        let r = H5Dread(id, emc_T_NATIVE_DOUBLE(), hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &out)
        if r < 0 { throw EMError(.badInput, file: filePath, at: path, "HDF5 could not read the values as numbers") }
        return Array(out.prefix(n))
    }

    /// String values (variable or fixed length, ASCII or UTF-8), any shape, in C order.
    public func readStringValues(maxElements: Int = 1 << 16) -> [String]? {
        let ft = H5ID(H5Dget_type(id), .datatype)
        guard H5Tget_class(ft.id) == H5T_STRING else { return nil }
        let sp = H5ID(H5Dget_space(id), .dataspace)
        let n = max(1, Int(H5Sget_simple_extent_npoints(sp.id)))
        guard n <= maxElements,
              (try? checkRead(elements: n, elementSize: H5Tis_variable_str(ft.id) > 0 ? 16 : H5Tget_size(ft.id), whole: true)) != nil else { return nil }
        defer { HDF5Guard.endRead() }
        if H5Tis_variable_str(ft.id) > 0 {
            let mt = vlenStringType(matching: ft.id)
            var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            guard variableLengthsFit(count: n, read: { H5Dread(id, mt.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &ptrs) >= 0 }) else { return nil }
            let out = ptrs.map { $0.map { String(cString: $0) } ?? "" }
            H5Dvlen_reclaim(mt.id, sp.id, hid_t(H5P_DEFAULT), &ptrs)
            return out
        }
        let size = H5Tget_size(ft.id)
        guard size > 0, size * n <= 1 << 26 else { return nil }
        var buf = [UInt8](repeating: 0, count: size * n)
        guard H5Dread(id, ft.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &buf) >= 0 else { return nil }
        return (0..<n).map { i in String(decoding: buf[(i * size)..<((i + 1) * size)].prefix { $0 != 0 }, as: UTF8.self) }
    }
}

extension HDF5Node {
    /// String attribute values (variable or fixed length, ASCII or UTF-8).
    public func attributeStrings(_ name: String) -> [String]? {
        guard H5Aexists(id, name) > 0 else { return nil }
        let a = H5ID(H5Aopen(id, name, hid_t(H5P_DEFAULT)), .attribute)
        guard a.id >= 0 else { return nil }
        let ft = H5ID(H5Aget_type(a.id), .datatype)
        guard H5Tget_class(ft.id) == H5T_STRING else { return nil }
        let sp = H5ID(H5Aget_space(a.id), .dataspace)
        let n = max(1, Int(H5Sget_simple_extent_npoints(sp.id)))
        guard n <= 1 << 16, checkAttributeRead(name, elements: n, elementSize: H5Tis_variable_str(ft.id) > 0 ? 16 : H5Tget_size(ft.id)) else { return nil }
        if H5Tis_variable_str(ft.id) > 0 {
            let mt = vlenStringType(matching: ft.id)
            var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            guard variableLengthAttributeFits(name, count: n, read: { H5Aread(a.id, mt.id, &ptrs) >= 0 }) else { return nil }
            let out = ptrs.map { $0.map { String(cString: $0) } ?? "" }
            H5Dvlen_reclaim(mt.id, sp.id, hid_t(H5P_DEFAULT), &ptrs)
            return out
        }
        let size = H5Tget_size(ft.id)
        guard size > 0, size * n <= 1 << 24 else { return nil }
        var buf = [UInt8](repeating: 0, count: size * n)
        guard H5Aread(a.id, ft.id, &buf) >= 0 else { return nil }
        return (0..<n).map { i in String(decoding: buf[(i * size)..<((i + 1) * size)].prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// First string value of an attribute (any string type).
    public func attributeString(_ name: String) -> String? { attributeStrings(name)?.first }
}
