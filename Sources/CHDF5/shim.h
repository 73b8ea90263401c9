#ifndef EMCONV_CHDF5_SHIM_H
#define EMCONV_CHDF5_SHIM_H
#include <hdf5.h>
#include <H5Zpublic.h>

/* HDF5 identifiers are C macros over global variables; Swift imports neither. */
static inline hid_t emc_T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t emc_T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t emc_T_NATIVE_INT16(void) { return H5T_NATIVE_INT16; }
static inline hid_t emc_T_NATIVE_UINT16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t emc_T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t emc_T_NATIVE_UINT32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t emc_T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t emc_T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t emc_T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t emc_T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t emc_T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t emc_T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t emc_T_STD_I16LE(void) { return H5T_STD_I16LE; }
static inline hid_t emc_T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t emc_T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t emc_T_STD_U32LE(void) { return H5T_STD_U32LE; }
static inline hid_t emc_T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t emc_T_STD_U64LE(void) { return H5T_STD_U64LE; }
static inline hid_t emc_T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t emc_T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t emc_T_C_S1(void) { return H5T_C_S1; }
static inline hid_t emc_P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t emc_P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t emc_P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t emc_P_DATASET_XFER(void) { return H5P_DATASET_XFER; }
static inline hid_t emc_P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t emc_P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t emc_P_LINK_ACCESS(void) { return H5P_LINK_ACCESS; }
static inline hid_t emc_P_DATASET_ACCESS(void) { return H5P_DATASET_ACCESS; }
static inline unsigned emc_F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned emc_F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned emc_F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned emc_F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline hsize_t emc_S_UNLIMITED(void) { return H5S_UNLIMITED; }
static inline size_t emc_T_VARIABLE(void) { return H5T_VARIABLE; }
static inline int emc_Z_FLAG_OPTIONAL(void) { return H5Z_FLAG_OPTIONAL; }
static inline int emc_Z_FLAG_MANDATORY(void) { return H5Z_FLAG_MANDATORY; }
static inline unsigned int emc_Z_FLAG_REVERSE(void) { return H5Z_FLAG_REVERSE; }
static inline int emc_Z_CLASS_T_VERS(void) { return H5Z_CLASS_T_VERS; }
static inline H5F_libver_t emc_F_LIBVER_EARLIEST(void) { return H5F_LIBVER_EARLIEST; }
static inline H5F_libver_t emc_F_LIBVER_V18(void) { return H5F_LIBVER_V18; }

/* Silence HDF5's automatic error stack printing (errors are reported by emconv). */
static inline void emc_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
#endif
