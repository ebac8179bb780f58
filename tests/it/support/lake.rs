//! Reading archived Parquet back: each row's device and sequence number,
//! which is what "stored exactly once" is checked by.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use bytes::Bytes;
use canopy::ports::store::ObjectStore;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Each row's `id_column` (a dictionary of strings) and `seq` in the object at `key`.
pub async fn id_seq_rows<S: ObjectStore>(store: &S, key: &str, id_column: &str) -> Vec<(String, i64)> {
    let mut rows = Vec::new();
    let body: Bytes = store.get(key).await.unwrap().body;
    for batch in ParquetRecordBatchReaderBuilder::try_new(body).unwrap().build().unwrap() {
        let batch = batch.unwrap();
        let ids = batch.column_by_name(id_column).unwrap().as_dictionary::<Int32Type>();
        let names = ids.values().as_string::<i32>();
        let seqs = batch.column_by_name("seq").unwrap().as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            rows.push((names.value(ids.keys().value(i) as usize).to_string(), seqs.value(i)));
        }
    }
    rows
}

/// [`id_seq_rows`] of every object under `prefix`.
pub async fn id_seq_rows_under<S: ObjectStore>(store: &S, prefix: &str, id_column: &str) -> Vec<(String, i64)> {
    let mut rows = Vec::new();
    for (key, _) in store.list(prefix).await.unwrap() {
        rows.extend(id_seq_rows(store, &key, id_column).await);
    }
    rows
}
