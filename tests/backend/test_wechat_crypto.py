"""Open-data decryption: the official vector, and every bad input as a clean domain error."""

import base64
import os

import pytest

from backend.wechat_crypto import (
    DecryptFailed,
    MalformedOpenData,
    WatermarkMismatch,
    decrypt_open_data,
    encrypt_open_data,
)

APPID = "wx4f4bc4dec97d474b"
SESSION_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
IV = "r7BXXKkLb8qrSNn05n0qiA=="
ENCRYPTED = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+"
    "3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6"
    "/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs"
    "8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns"
    "/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG"
    "20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
)
WERUN_ENCRYPTED = (
    "XoLUxF76jN/OsfTGUqF/ZjmZu0B4O82Y3eYgcmoqKbOt84OdZ2Yu4rJJ0HZD+bZyPCurEi9748Hcj2ht/h6Vga19Vq+Ss5+U"
    "TXfYPtR3XfWB1TPGqOaHP+S/Ppf9vgQoyhrTuJkavrbeVJFuI6c46fYud0n1mlL8guOazz8gUtNWv1vBJbWMxMpSkGYbhj8A"
    "r+4TvjnDqzu+uTqC3MTSNg=="
)


def test_official_vector_decrypts_to_the_documented_user():
    data = decrypt_open_data(SESSION_KEY, IV, ENCRYPTED, APPID)
    assert data["openId"] == "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
    assert data["nickName"] == "Band"
    assert data["watermark"] == {"timestamp": 1477314187, "appid": APPID}


def test_werun_vector_gives_the_step_list():
    data = decrypt_open_data(SESSION_KEY, IV, WERUN_ENCRYPTED, APPID)
    assert data["stepInfoList"] == [
        {"timestamp": 1505836800, "step": 3611}, {"timestamp": 1505923200, "step": 2657},
    ]


def test_wrong_key_is_decrypt_failed():
    with pytest.raises(DecryptFailed):
        decrypt_open_data("HyVFkGl5F5OQWJZZaNzBBg==", IV, ENCRYPTED, APPID)


@pytest.mark.parametrize("seed", range(30))
def test_random_wrong_keys_never_leak_another_exception(seed):
    key = base64.b64encode(os.urandom(16)).decode()
    with pytest.raises(DecryptFailed):
        decrypt_open_data(key, IV, ENCRYPTED, APPID)


def test_truncated_data_is_decrypt_failed():
    raw = base64.b64decode(ENCRYPTED)
    for cut in (raw[:-16], raw[:-5], raw[:16]):
        with pytest.raises(DecryptFailed):
            decrypt_open_data(SESSION_KEY, IV, base64.b64encode(cut).decode(), APPID)


def test_garbage_is_decrypt_failed():
    garbage = base64.b64encode(os.urandom(64)).decode()
    with pytest.raises(DecryptFailed):
        decrypt_open_data(SESSION_KEY, IV, garbage, APPID)


def test_another_appid_is_watermark_mismatch():
    with pytest.raises(WatermarkMismatch):
        decrypt_open_data(SESSION_KEY, IV, ENCRYPTED, "wx0000000000000000")


@pytest.mark.parametrize(
    ("session_key", "iv", "data", "field"),
    [
        ("not base64!!", IV, ENCRYPTED, "session_key"),
        (base64.b64encode(b"short").decode(), IV, ENCRYPTED, "session_key"),
        (SESSION_KEY, base64.b64encode(b"x" * 15).decode(), ENCRYPTED, "iv"),
        (SESSION_KEY, IV, ENCRYPTED.replace("+", " "), "encrypted_data"),
        (SESSION_KEY, IV, "", "encrypted_data"),
    ],
)
def test_malformed_input_names_the_field(session_key, iv, data, field):
    with pytest.raises(MalformedOpenData) as caught:
        decrypt_open_data(session_key, iv, data, APPID)
    assert caught.value.field == field


def test_encrypt_round_trip_adds_our_watermark():
    key = base64.b64encode(os.urandom(16)).decode()
    encrypted, iv = encrypt_open_data(key, {"stepInfoList": [{"timestamp": 1, "step": 5}]}, APPID,
                                      now=1700000000)
    data = decrypt_open_data(key, iv, encrypted, APPID)
    assert data == {"stepInfoList": [{"timestamp": 1, "step": 5}],
                    "watermark": {"timestamp": 1700000000, "appid": APPID}}


def test_a_json_array_is_not_open_data():
    key = base64.b64encode(os.urandom(16)).decode()
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(b"[1, 2]") + padder.finalize()
    enc = Cipher(algorithms.AES(base64.b64decode(key)), modes.CBC(iv)).encryptor()
    data = base64.b64encode(enc.update(padded) + enc.finalize()).decode()
    with pytest.raises(DecryptFailed):
        decrypt_open_data(key, base64.b64encode(iv).decode(), data, APPID)
