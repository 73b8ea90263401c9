import Foundation

/// Vocabularies NXem (and the NeXus base classes it uses) prescribe, shared by the writer's
/// checks, `emconv validate` and the metadata sidecar.
public enum NXemVocabulary {
    /// NXem `sample/physical_form` enumeration (open: other values are accepted with a note).
    public static let physicalForms = ["bulk", "foil", "thin_film", "powder"]

    /// Element symbols of the periodic table (NXem `sample/atom_types`).
    public static let elements: Set<String> = Set("""
    H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr
    Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir
    Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl
    Mc Lv Ts Og
    """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
}
