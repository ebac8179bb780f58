use super::*;
use std::os::unix::fs::PermissionsExt;

use canopy::domain::device_id::DeviceId;
use canopy::format::frame::{CanId, FrameFlags};
use canopy::format::lake::keys::RawKey;

fn frames(n: usize, start: i64) -> Vec<CanFrame> {
    let buses: [BusName; 2] = [Arc::from("can0"), Arc::from("can1")];
    (0..n)
        .map(|i| {
            let bus = buses[i % 2].clone();
            match i % 4 {
                0 => CanFrame::new(
                    start + i as i64,
                    bus,
                    CanId::Standard(0x100),
                    FrameFlags::empty(),
                    &[i as u8; 8],
                )
                .unwrap(),
                1 => CanFrame::new(
                    start + i as i64,
                    bus,
                    CanId::Extended(0x18FF50E5),
                    FrameFlags::FD,
                    &[7; 64],
                )
                .unwrap(),
                2 => CanFrame::remote(start + i as i64, bus, CanId::Standard(0x7FF), 3).unwrap(),
                _ => CanFrame::new(start + i as i64, bus, CanId::Standard(1), FrameFlags::empty(), &[]).unwrap(),
            }
        })
        .collect()
}

fn config(dir: &Path) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        sync_interval_ms: 10,
        seal_after_s: 3600.0,
        seal_max_frames: 1_000_000,
        max_bytes: 1 << 30,
        full_policy: FullPolicy::DropOldest,
    }
}

fn read_all(path: &Path) -> (Vec<Record>, bool) {
    let mut reader = SegmentReader::new(BufReader::new(File::open(path).unwrap()));
    let records: Vec<Record> = reader.by_ref().map(|r| r.unwrap()).collect();
    (records, reader.damaged)
}

#[test]
fn only_this_user_can_read_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("spool");
    let (mut spool, _) = Spool::open(&config(&root), Arc::default()).unwrap();
    spool.append(&frames(4, 0), Some(4)).unwrap();
    let segment = spool.close().unwrap().unwrap().path;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("segments")), 0o700);
    assert_eq!(mode(&root.join("outbox")), 0o700);
    assert_eq!(mode(&segment), 0o600);
    assert_eq!(mode(&root.join("next_seq")), 0o600);
}

#[test]
fn frames_and_cursors_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, recovered) = Spool::open(&config(dir.path()), Arc::default()).unwrap();
    assert!(recovered.segments.is_empty() && recovered.cursor.is_none());
    let written = frames(10, 1000);
    spool.append(&written[..6], Some(6)).unwrap();
    spool.append(&written[6..], Some(10)).unwrap();
    let closed = spool.close().unwrap().unwrap();
    let (records, damaged) = read_all(&closed.path);
    assert!(!damaged);
    let mut expected: Vec<Record> = written[..6].iter().cloned().map(Record::Frame).collect();
    expected.push(Record::Cursor(6));
    expected.extend(written[6..].iter().cloned().map(Record::Frame));
    expected.push(Record::Cursor(10));
    assert_eq!(records, expected);
}

#[test]
fn a_torn_tail_is_cut_at_recovery_and_the_cursor_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = Spool::open(&config(dir.path()), Arc::default()).unwrap();
    spool.append(&frames(5, 0), Some(5)).unwrap();
    spool.append(&frames(5, 5), Some(10)).unwrap();
    let path = spool.close().unwrap().unwrap().path;
    drop(spool);
    // A power cut in the middle of the second batch's last record.
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (_, recovered) = Spool::open(&config(dir.path()), Arc::default()).unwrap();
    assert_eq!(recovered.segments.len(), 1);
    assert_eq!(
        recovered.cursor,
        Some(5),
        "the damaged batch's cursor is gone, so its frames are read again"
    );
    let (records, damaged) = read_all(&path);
    assert!(!damaged, "the tail was cut");
    assert_eq!(
        records.iter().filter(|r| matches!(r, Record::Frame(_))).count(),
        5,
        "back to the last whole batch"
    );
    assert_eq!(records.last(), Some(&Record::Cursor(5)));
}

#[test]
fn sealing_writes_a_deterministic_raw_file_and_keeps_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (mut spool, _) = Spool::open(&cfg, Arc::default()).unwrap();
    let written = frames(100, 1_700_000_000_000_000);
    spool.append(&written, Some(100)).unwrap();
    let closed = spool.close().unwrap().unwrap();
    let copy = dir.path().join("copy.seg");
    fs::copy(&closed.path, &copy).unwrap();
    let vehicle = DeviceId::new("veh-1").unwrap();
    let sealed = seal(&closed, &vehicle, spool.layout(), &spool.used()).unwrap();
    assert_eq!(sealed.frames, 100);
    assert_eq!(sealed.files.len(), 1);
    let file = sealed.files[0].clone();
    assert_eq!(file.file_name().unwrap(), "veh-1_1700000000000000_000001.parquet");
    assert!(!closed.path.exists());
    assert_eq!(spool.layout().read_cursor(), Some(100));
    let key = key_of_outbox_file(&file, &vehicle).unwrap();
    assert_eq!(
        key.raw_key(),
        "raw/vehicle_id=veh-1/date=2023-11-14/veh-1_1700000000000000_000001.parquet"
    );
    // Sealing the same segment again (a crash before the delete) gives the same file.
    let first = fs::read(&file).unwrap();
    fs::rename(&copy, &closed.path).unwrap();
    seal(&closed, &vehicle, spool.layout(), &spool.used()).unwrap();
    assert_eq!(fs::read(&file).unwrap(), first);
    // The frames survive: read the raw file back.
    assert_eq!(read_raw(&file), written);
}

fn read_raw(file: &Path) -> Vec<CanFrame> {
    let mut read = Vec::new();
    let mut buses = canopy::format::candump::BusNames::default();
    for batch in canopy::format::lake::raw::RawFileReader::open(file).unwrap() {
        let batch = batch.unwrap();
        for i in 0..batch.len() {
            read.push(batch.row(i).unwrap().to_frame(&mut buses).unwrap());
        }
    }
    read
}

#[test]
fn a_segment_over_midnight_seals_one_file_per_utc_date() {
    use canopy::format::lake::keys::date_of;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (mut spool, _) = Spool::open(&cfg, Arc::default()).unwrap();
    const MIDNIGHT: i64 = 1_700_006_400_000_000; // 2023-11-15T00:00Z
    const DAY: i64 = 86_400_000_000;
    // Two buses whose clocks differ: dates interleave around midnight,
    // then a replay jumps a day ahead and a straggler of the first date
    // comes after the third date closed it.
    let mut written = frames(40, MIDNIGHT - 20);
    for (i, f) in written.iter_mut().enumerate() {
        if i % 2 == 1 {
            f.ts_us -= 15;
        }
    }
    written.extend(frames(10, MIDNIGHT + DAY + 5));
    written.extend(frames(3, MIDNIGHT - 1_000));
    spool.append(&written, Some(53)).unwrap();
    let closed = spool.close().unwrap().unwrap();
    let copy = dir.path().join("copy.seg");
    fs::copy(&closed.path, &copy).unwrap();
    let vehicle = DeviceId::new("veh-1").unwrap();
    let sealed = seal(&closed, &vehicle, spool.layout(), &spool.used()).unwrap();
    assert_eq!(sealed.frames, 53);
    let keys: Vec<RawKey> = sealed
        .files
        .iter()
        .map(|f| key_of_outbox_file(f, &vehicle).unwrap())
        .collect();
    let dates: Vec<String> = keys.iter().map(|k| k.date.to_string()).collect();
    assert_eq!(dates, ["2023-11-14", "2023-11-15", "2023-11-16", "2023-11-14"]);
    let mut read = Vec::new();
    for (file, key) in sealed.files.iter().zip(&keys) {
        let frames = read_raw(file);
        assert!(
            frames.iter().any(|f| f.ts_us == key.first_ts_us),
            "{key:?} is named by the first frame it was given"
        );
        assert!(
            frames.iter().all(|f| date_of(f.ts_us) == key.date),
            "{key:?} holds its date only"
        );
        read.extend(frames);
    }
    let mut expected = written.clone();
    read.sort_by_key(|f| format!("{f:?}"));
    expected.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(read, expected, "every frame once");
    // Sealing again after a crash writes the same files.
    let first: Vec<Vec<u8>> = sealed.files.iter().map(|f| fs::read(f).unwrap()).collect();
    fs::rename(&copy, &closed.path).unwrap();
    let again = seal(&closed, &vehicle, spool.layout(), &spool.used()).unwrap();
    assert_eq!(again.files, sealed.files);
    let second: Vec<Vec<u8>> = again.files.iter().map(|f| fs::read(f).unwrap()).collect();
    assert_eq!(first, second);
}

#[test]
fn a_full_spool_drops_by_its_policy_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_bytes = 16 * 1024 * 1024;
    cfg.full_policy = FullPolicy::DropNewest;
    let counters = Arc::new(AgentCounters::default());
    let (mut spool, _) = Spool::open(&cfg, counters.clone()).unwrap();
    spool.used.store(cfg.max_bytes, Ordering::Relaxed); // pretend the disk budget is used up...
    fs::write(
        spool.layout().outbox.join("veh-1_1_000001.parquet"),
        vec![0u8; 17 * 1024 * 1024],
    )
    .unwrap();
    assert_eq!(spool.append(&frames(10, 0), None).unwrap(), 10);
    assert_eq!(counters.frames_dropped.load(Ordering::Relaxed), 10);

    cfg.full_policy = FullPolicy::DropOldest;
    let (mut spool, _) = Spool::open(&cfg, counters.clone()).unwrap();
    assert_eq!(
        spool.append(&frames(10, 0), None).unwrap(),
        0,
        "the oldest batch made room"
    );
    assert!(spool.layout().outbox_files().unwrap().is_empty());
}
