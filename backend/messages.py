"""Human messages for every stable error code: Chinese by default, English on request."""

from __future__ import annotations

# code -> (zh-CN, en)
MESSAGES: dict[str, tuple[str, str]] = {
    "request.malformed": ("请求体不是有效的 JSON", "The request body is not valid JSON"),
    "validation.failed": ("请求内容有误，请检查后重试", "The request failed validation"),
    "request.unsupported_media_type": ("不支持的内容类型", "Unsupported content type"),
    "request.too_large": ("请求体过大（上限 1 MiB）", "The request body is over 1 MiB"),
    "request.method_not_allowed": ("不支持该请求方法", "Method not allowed"),
    "not_found": ("资源不存在", "Not found"),
    "server.error": ("服务器内部错误，请稍后再试", "Internal server error"),
    "auth.code_invalid": ("登录凭证无效或已使用，请重新登录",
                          "The login code is invalid or already used: call wx.login again"),
    "auth.wechat_rate_limited": ("登录过于频繁，请稍后再试",
                                 "WeChat rate limit reached, try again later"),
    "auth.user_blocked": ("该微信账号存在风险，登录被拦截",
                          "WeChat blocked this login (high-risk user)"),
    "wechat.unavailable": ("微信服务暂时不可用，请稍后再试",
                           "WeChat is unavailable, try again later"),
    "auth.token_missing": ("请先登录", "Authentication required"),
    "auth.token_invalid": ("登录状态无效，请重新登录", "The token is invalid"),
    "auth.token_expired": ("登录已过期，请重新登录", "The token has expired"),
    "auth.credentials_invalid": ("邮箱或密码错误", "Wrong email or password"),
    "auth.forbidden": ("没有权限执行此操作", "Not allowed"),
    "rate_limited": ("请求过于频繁，请稍后再试", "Too many requests"),
    "campaign.not_active": ("活动未开始或已结束", "The campaign is not open"),
    "campaign.not_joined": ("请先加入活动", "Join the campaign first"),
    "campaign.join_denied": ("无法加入该活动", "You may not join or add to this campaign"),
    "campaign.history_locked": ("该修改会改变已计入的历史记录，请使用修订",
                                "This change would rewrite counted history; use a revision"),
    "team.conflict": ("队伍冲突", "Team conflict"),
    "checkin.already_done": ("今天已经打过卡了", "Already checked in for that day"),
    "checkin.date_out_of_range": ("该日期不能打卡", "That date cannot be checked in"),
    "checkin.source_not_allowed": ("该行为不能手动打卡", "This action cannot be self-reported"),
    "werun.decrypt_failed": ("微信运动数据无法解密，请重新登录",
                             "Cannot decrypt the WeRun data: call wx.login again"),
    "werun.watermark_mismatch": ("微信运动数据不属于本小程序",
                                 "The WeRun data belongs to another app"),
    "partner.signature_invalid": ("签名校验失败", "Signature check failed"),
    "idempotency.mismatch": ("同一幂等键对应了不同的请求",
                             "The Idempotency-Key was used with another request"),
    "hold.already_decided": ("该待审核记录已处理", "The hold was already decided"),
    "partner.link_conflict": ("该合作方账号已绑定其他用户",
                              "That partner account is linked to another user"),
    "service.unavailable": ("服务暂时不可用，请稍后再试",
                            "Service temporarily unavailable, try again later"),
}


def message_for(code: str, english: bool) -> str:
    """The message of ``code`` in the chosen language; raises KeyError for an unknown code."""
    zh, en = MESSAGES[code]
    return en if english else zh
