import Foundation

/// The sample (NXem `sample`, NXsample), as a user states it: vendor files do not record it.
public struct SampleInfo: Sendable, Equatable {
    public var name: String?
    public var atomTypes: [String]?
    public var preparationDate: Timestamp?
    public var physicalForm: String?
    public var identifier: String?
    public var identifierType: String?
    public var isSimulation: Bool?
    public var description: String?
    public var thickness: Quantity?
    public init() {}

    public var isEmpty: Bool { self == SampleInfo() }
}

/// One person (NXem `userID`, NXuser).
public struct UserInfo: Sendable, Equatable {
    public var name: String?
    public var affiliation: String?
    public var email: String?
    public var orcid: String?
    public var role: String?
    public init(name: String? = nil, affiliation: String? = nil, email: String? = nil, orcid: String? = nil, role: String? = nil) {
        self.name = name
        self.affiliation = affiliation
        self.email = email
        self.orcid = orcid
        self.role = role
    }
}

/// A document kept verbatim in the output (the metadata sidecar itself, its free-form section).
public struct AttachedDocument: Sendable, Equatable {
    /// Short machine name (`sidecar`, `extra`): writers derive group names from it.
    public var role: String
    public var description: String
    public var fileName: String
    public var mediaType: String
    public var sha256: String?
    public var text: String
    public init(role: String, description: String, fileName: String, mediaType: String, sha256: String? = nil, text: String) {
        self.role = role
        self.description = description
        self.fileName = fileName
        self.mediaType = mediaType
        self.sha256 = sha256
        self.text = text
    }
}

/// File-level facts that do not come from the input but from the user (through the converter's
/// merge of a metadata sidecar): the sample, the users, and the documents that supplied them.
public struct Supplement: Sendable, Equatable {
    public var sample = SampleInfo()
    public var users: [UserInfo] = []
    public var documents: [AttachedDocument] = []
    public init() {}

    public var isEmpty: Bool { sample.isEmpty && users.isEmpty && documents.isEmpty }

    /// The facets this supplement fills, for the converter's "left out" warning.
    public var facets: Set<MetadataFacet> {
        var f: Set<MetadataFacet> = []
        if !sample.isEmpty { f.insert(.sample) }
        if !users.isEmpty { f.insert(.users) }
        if !documents.isEmpty { f.insert(.attachedDocuments) }
        return f
    }
}
